#include <doctest/doctest.h>

#include <set>

#include "podworker/handler.h"
#include "podworker/ids.h"
#include "podworker/json.h"

using namespace podworker;

TEST_CASE("parse_object accepts an object and rejects everything else with a clear message") {
  auto doc = json::parse_object(R"({"input":{"a":1}})");
  CHECK(doc["input"]["a"].GetInt() == 1);
  CHECK_THROWS_WITH_AS(json::parse_object("[1]"), "JSON body must be an object", JsonError);
  CHECK_THROWS_WITH_AS(json::parse_object("{\"a\":"), doctest::Contains("malformed JSON at offset"),
                       JsonError);
  CHECK_THROWS_WITH_AS(json::parse_object("{} x"), doctest::Contains("malformed JSON"), JsonError);
  CHECK_THROWS_WITH_AS(json::parse_object("{\"a\":1}", 3), doctest::Contains("exceeds the limit"),
                       JsonError);
}

TEST_CASE("RapidJSON assertions throw instead of aborting") {
  auto doc = json::parse("[1,2]");
  CHECK_THROWS_AS((void)doc["x"], JsonError);
  CHECK_THROWS_AS((void)doc.GetObject(), JsonError);
}

TEST_CASE("typed getters: fallback when absent, error when the type is wrong") {
  auto doc = json::parse_object(R"({"s":"x","n":2.5,"i":7,"f":7.0,"b":true,"z":null})");
  CHECK(json::get_string(doc, "s") == "x");
  CHECK(json::get_string(doc, "missing", "d") == "d");
  CHECK(json::get_string(doc, "z", "d") == "d");
  CHECK(json::get_number(doc, "n", 0) == 2.5);
  CHECK(json::get_int(doc, "i", 0) == 7);
  CHECK(json::get_int(doc, "f", 0) == 7);
  CHECK(json::get_bool(doc, "b", false));
  CHECK_THROWS_WITH_AS(json::get_int(doc, "n", 0), "\"n\" must be an integer", JsonError);
  CHECK_THROWS_WITH_AS(json::get_string(doc, "i"), "\"i\" must be a string", JsonError);
  CHECK_THROWS_AS(json::get_bool(doc, "s", false), JsonError);
}

TEST_CASE("to_string and copy round-trip") {
  auto doc = json::parse(R"({"a":[1,"two",{"three":3.5}],"b":null})");
  auto c = json::copy(doc);
  CHECK(json::to_string(c) == R"({"a":[1,"two",{"three":3.5}],"b":null})");
}

TEST_CASE("make_uuid gives distinct version-4 ids") {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = make_uuid();
    CHECK(id.size() == 36);
    CHECK(id[14] == '4');
    CHECK((id[19] == '8' || id[19] == '9' || id[19] == 'a' || id[19] == 'b'));
    seen.insert(id);
  }
  CHECK(seen.size() == 1000);
}

TEST_CASE("handler registry creates registered handlers and rejects unknown names") {
  HandlerRegistry reg;
  reg.add("upper", plain_handler([](Job&) { return Output::ok("X"); }));
  CHECK(reg.contains("upper"));
  auto h = reg.create("upper");
  CHECK_FALSE(h->streams());
  CHECK_THROWS_AS(reg.create("nope"), std::invalid_argument);
  reg.add("s", streaming_handler([](Job&, Emitter&) {}));
  CHECK(reg.create("s")->streams());
  auto e = Output::error("bad");
  CHECK(e.is_error());
  CHECK(e.error_message() == "bad");
  CHECK(Output::ok("t").value().GetString() == std::string("t"));
}

TEST_CASE("clone and copy own every string, StringRef ones included") {
  std::string text = "temporary";
  json::Value arr(rapidjson::kArrayType);
  json::Document holder;
  arr.PushBack(json::Value(rapidjson::StringRef(text.c_str(), text.size())), holder.GetAllocator());
  json::Document target;
  json::Value cloned = json::clone(arr, target.GetAllocator());
  json::Document copied = json::copy(arr);
  text.assign(text.size(), 'X');  // the original storage changes under the shared pointer
  CHECK(std::string(cloned[0].GetString()) == "temporary");
  CHECK(std::string(copied[0].GetString()) == "temporary");
}

// The JSON layer against hostile text: nesting far past the limit and invalid UTF-8 must end in a
// JsonError of the right kind, never in a crash; writing and copying must work at any depth.
#include <doctest/doctest.h>

#include <string>

#include "hostile_json.h"
#include "podworker/json.h"
#include "podworker/utf8.h"

using namespace podworker;
using podworker::test::nested_json;
using podworker::test::Nesting;

namespace {

JsonError::Kind kind_of(std::string_view text, std::size_t max_depth = json::kMaxDepth) {
  try {
    (void)json::parse(text, json::kNoSizeLimit, max_depth);
  } catch (const JsonError& e) {
    return e.kind();
  }
  FAIL("parsed without an error");
  return JsonError::Kind::invalid;
}

// A value built in code (no parse limits it) `depth` levels deep, ending in a StringRef string.
json::Value built_deep(std::size_t depth, json::Document::AllocatorType& a) {
  json::Value v(rapidjson::StringRef("leaf"));
  for (std::size_t i = 0; i < depth; ++i) {
    json::Value parent(i % 2 ? rapidjson::kArrayType : rapidjson::kObjectType);
    if (parent.IsArray()) {
      parent.PushBack(v, a);
    } else {
      parent.AddMember("k", v, a);
    }
    v = parent;
  }
  return v;
}

}  // namespace

TEST_CASE("nesting up to kMaxDepth parses; one level more is refused, at any depth beyond") {
  for (Nesting kind : {Nesting::objects, Nesting::arrays, Nesting::mixed}) {
    CAPTURE(static_cast<int>(kind));
    const auto at_limit = json::parse(nested_json(json::kMaxDepth, kind));
    CHECK(json::to_string(at_limit) == nested_json(json::kMaxDepth, kind));
    CHECK_THROWS_WITH_AS(json::parse(nested_json(json::kMaxDepth + 1, kind)),
                         doctest::Contains("nests deeper than the limit of 256 levels"), JsonError);
    // Far beyond: RapidJSON's recursive parser would overflow the stack here.
    CHECK(kind_of(nested_json(1'000'000, kind)) == JsonError::Kind::too_deep);
  }
  CHECK(kind_of("[[[1]]]", 2) == JsonError::Kind::too_deep);
  CHECK(json::parse("[[1]]", json::kNoSizeLimit, 2)[0][0].GetInt() == 1);
  // Unclosed nesting is malformed, however deep it went before the text ended.
  CHECK(kind_of(std::string(100, '['), 1000) == JsonError::Kind::invalid);
}

TEST_CASE("invalid UTF-8 in strings and keys is refused; valid text of every length passes") {
  for (const auto& bad : test::bad_utf8_cases()) {
    CAPTURE(bad.what);
    const std::string as_string = std::string(R"({"s":")") + bad.bytes + "\"}";
    const std::string as_key = std::string(R"({")") + bad.bytes + R"(":1})";
    CHECK(kind_of(as_string) == JsonError::Kind::bad_encoding);
    CHECK(kind_of(as_key) == JsonError::Kind::bad_encoding);
    CHECK_THROWS_WITH_AS(json::parse(as_string), doctest::Contains("not valid UTF-8"), JsonError);
  }
  const auto ok = json::parse(R"({"é":"a\u00e9\u20ac\ud83d\ude00 é€😀"})");
  CHECK(std::string(ok["é"].GetString()) == "aé€😀 é€😀");
}

TEST_CASE("utf8_valid and utf8_sanitize follow RFC 3629 exactly") {
  CHECK(utf8_valid(""));
  CHECK(utf8_valid("ascii \x7f"));
  CHECK(
      utf8_valid("\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xed\x9f\xbf \xee\x80\x80 \xf0\x90\x80\x80 "
                 "\xf4\x8f\xbf\xbf"));
  for (const auto& bad : test::bad_utf8_cases()) {
    if (bad.bytes[0] == '\\') continue;  // escapes are JSON's business, not raw UTF-8
    CAPTURE(bad.what);
    CHECK_FALSE(utf8_valid(bad.bytes));
  }
  CHECK(utf8_sanitize("a\xffz") == "a\xef\xbf\xbdz");
  CHECK(utf8_sanitize("caf\xc3") == "caf\xef\xbf\xbd");
  CHECK(utf8_sanitize("\xe0\x80\xaf") == "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
  CHECK(utf8_sanitize("é€😀") == "é€😀");
}

TEST_CASE("to_string never writes invalid UTF-8 or invalid JSON, whatever a value holds") {
  json::Document doc;
  doc.SetObject();
  auto& a = doc.GetAllocator();
  doc.AddMember(json::string_value("k\xff", a), json::string_value("v\xc3", a), a);
  doc.AddMember("nan", std::numeric_limits<double>::quiet_NaN(), a);
  doc.AddMember("inf", -std::numeric_limits<double>::infinity(), a);
  doc.AddMember("n", 1.5, a);
  doc.AddMember("i", -7, a);
  doc.AddMember("u", std::uint64_t(18'000'000'000'000'000'000u), a);
  const std::string text = json::to_string(doc);
  CHECK(text ==
        "{\"k\xef\xbf\xbd\":\"v\xef\xbf\xbd\",\"nan\":null,\"inf\":null,\"n\":1.5,\"i\":-7,"
        "\"u\":18000000000000000000}");
  CHECK(utf8_valid(text));
  CHECK(json::parse(text).IsObject());
}

TEST_CASE("clone, copy and to_string are iterative: a value built 1,000,000 levels deep is safe") {
  json::Document holder;
  const json::Value deep = built_deep(1'000'000, holder.GetAllocator());
  json::Document target;
  const json::Value cloned = json::clone(deep, target.GetAllocator());
  const json::Document copied = json::copy(deep);
  const std::string text = json::to_string(deep);
  CHECK(text.size() ==
        500'000 * 5 + 500'000 * 1 + 1'000'000 + 6);  // {"k": and [ openers, closers, "leaf"
  CHECK(json::to_string(cloned) == text);
  CHECK(json::to_string(copied) == text);
  // The copy owns its strings: the clone's leaf is not the original's StringRef.
  const auto leaf = [](const json::Value* v) {
    while (!v->IsString()) v = v->IsArray() ? &(*v)[0] : &(*v)["k"];
    return v->GetString();
  };
  CHECK(leaf(&cloned) != leaf(&deep));
  CHECK(std::string(leaf(&cloned)) == "leaf");
  // And parsing that text is refused cleanly rather than crashing.
  CHECK(kind_of(text) == JsonError::Kind::too_deep);
}

TEST_CASE("parse_pruned keeps the shallow parts and names the root elements that were too deep") {
  const std::string deep = nested_json(100'000, Nesting::mixed);
  const std::string text = R"([{"id":"a","input":{"x":1}},{"id":"b","input":{"x":)" + deep +
                           R"(}},{"id":"c","input":)" + deep + R"(,"more":)" + deep + "}," +
                           nested_json(4, Nesting::arrays) + "]";
  auto reply = json::parse_pruned(text, json::kNoSizeLimit, 8);
  REQUIRE(reply.doc.IsArray());
  REQUIRE(reply.doc.Size() == 4);
  CHECK(reply.pruned == std::vector<std::size_t>{1, 2});
  CHECK(json::get_string(reply.doc[1], "id") == "b");
  CHECK(reply.doc[0]["input"]["x"].GetInt() == 1);
  // The container that would have opened at level 9 stands as null: levels 1..8 remain.
  CHECK(json::to_string(reply.doc[1]["input"]) == R"({"x":{"a":[{"a":[{"a":null}]}]}})");
  CHECK(reply.doc[2]["input"]["a"][0]["a"][0]["a"][0].IsNull());
  CHECK(json::get_string(reply.doc[2], "id") == "c");
  CHECK(json::to_string(reply.doc[3]) == "[[[[1]]]]");

  // An object root: positions are member positions.
  auto one = json::parse_pruned(R"({"id":"x","input":)" + deep + "}", json::kNoSizeLimit, 4);
  CHECK(one.pruned == std::vector<std::size_t>{1});
  CHECK(json::get_string(one.doc, "id") == "x");
  CHECK(json::parse_pruned(R"({"id":"x"})", json::kNoSizeLimit, 4).pruned.empty());
  // Pruning is about depth only: bad UTF-8 and malformed text still fail the whole parse.
  CHECK_THROWS_AS(json::parse_pruned("[\"\xff\"]", json::kNoSizeLimit, 4), JsonError);
  CHECK_THROWS_AS(json::parse_pruned("[" + deep, json::kNoSizeLimit, 4), JsonError);
}

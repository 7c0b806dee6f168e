// merged_bodies(): how the chunks yielded during one post in flight become the next posts.
#include <doctest/doctest.h>

#include "podworker/json.h"
#include "podworker/utf8.h"
#include "stream_merge.h"
#include "stream_split.h"

namespace podworker::worker {
namespace {

// Merges leading {"seq": [...]} objects by concatenating their arrays.
struct SeqRule final : Handler {
  Output execute(Job&, Emitter&) override { return {}; }
  std::size_t merge_chunks(std::span<const json::Value* const> chunks,
                           json::Document& merged) const override {
    merged.SetObject();
    json::Value seq(rapidjson::kArrayType);
    std::size_t n = 0;
    for (; n < chunks.size() && chunks[n]->IsObject() && chunks[n]->HasMember("seq"); ++n) {
      for (const auto& v : (*chunks[n])["seq"].GetArray())
        seq.PushBack(v.GetInt(), merged.GetAllocator());
    }
    merged.AddMember("seq", seq, merged.GetAllocator());
    return n;
  }
};

struct NoRule final : Handler {
  Output execute(Job&, Emitter&) override { return {}; }
};

struct Chunks {
  json::Document doc{rapidjson::kArrayType};
  void add(const std::string& json_text) {
    doc.PushBack(json::clone(json::parse(json_text), doc.GetAllocator()), doc.GetAllocator());
  }
  std::vector<const json::Value*> refs() const {
    std::vector<const json::Value*> out;
    for (const auto& v : doc.GetArray()) out.push_back(&v);
    return out;
  }
};

std::vector<std::string> outputs(const std::vector<std::string>& bodies, std::size_t max_bytes) {
  std::vector<std::string> out;
  for (const auto& body : bodies) {
    CHECK(body.size() <= max_bytes);
    out.push_back(json::to_string(json::parse(body)["output"]));
  }
  return out;
}

}  // namespace

TEST_CASE("merge: a run of strings is one post, split within the limit on code points") {
  Chunks c;
  std::string expected;
  for (int i = 0; i < 40; ++i) {
    const std::string piece = std::to_string(i) + "é€\"\n";
    c.add(json::to_string(json::Value(rapidjson::StringRef(piece.data(), piece.size()))));
    expected += piece;
  }
  NoRule rule;
  const auto one = merged_bodies(c.refs(), rule, 1024 * 1024);
  REQUIRE(one.size() == 1);
  CHECK(json::parse(one[0])["output"].GetString() == expected);

  const auto split = merged_bodies(c.refs(), rule, 64);
  CHECK(split.size() > 1);
  std::string joined;
  for (const auto& body : split) {
    CHECK(body.size() <= 64);
    const auto doc = json::parse(body);
    const std::string_view piece(doc["output"].GetString(), doc["output"].GetStringLength());
    CHECK(utf8_valid(piece));
    joined += piece;
  }
  CHECK(joined == expected);
}

TEST_CASE("merge: objects go through the rule; a merge over the limit is halved until it fits") {
  Chunks c;
  for (int i = 0; i < 50; ++i) c.add(R"({"seq":[)" + std::to_string(i) + "]}");
  SeqRule rule;
  CHECK(outputs(merged_bodies(c.refs(), rule, 1024), 1024).size() == 1);
  const auto small = outputs(merged_bodies(c.refs(), rule, 60), 60);
  CHECK(small.size() > 2);
  std::vector<int> seq;
  for (const auto& o : small) {
    const auto doc = json::parse(o);
    for (const auto& v : doc["seq"].GetArray()) seq.push_back(v.GetInt());
  }
  REQUIRE(seq.size() == 50);
  for (int i = 0; i < 50; ++i) CHECK(seq[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("merge: without a rule each object is its own post; order holds across kinds") {
  Chunks c;
  c.add(R"("a")");
  c.add(R"("b")");
  c.add(R"({"k":1})");
  c.add(R"({"k":2})");
  c.add(R"("c")");
  c.add(R"([1,2])");
  c.add(R"("d")");
  NoRule none;
  CHECK(
      outputs(merged_bodies(c.refs(), none, 1024), 1024) ==
      std::vector<std::string>{R"("ab")", R"({"k":1})", R"({"k":2})", R"("c")", "[1,2]", R"("d")"});
  SeqRule seq;  // merges nothing here: no chunk has "seq"
  CHECK(outputs(merged_bodies(c.refs(), seq, 1024), 1024).size() == 6);
}

TEST_CASE("merge: an array over the limit is split element-wise as a lone yield would be") {
  Chunks c;
  c.add(R"(["aaaaaaaaaa","bbbbbbbbbb","cccccccccc","dddddddddd"])");
  NoRule none;
  const auto out = outputs(merged_bodies(c.refs(), none, 40), 40);
  CHECK(out == std::vector<std::string>{R"(["aaaaaaaaaa","bbbbbbbbbb"])",
                                        R"(["cccccccccc","dddddddddd"])"});
}

}  // namespace podworker::worker

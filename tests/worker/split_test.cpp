// Stream splitting rules, URL templates and flags: the pure functions under the job loop.
#include <doctest/doctest.h>

#include "podworker/utf8.h"
#include "podworker/worker.h"
#include "stream_split.h"

namespace podworker::worker {

TEST_CASE("split: small chunks are posted whole") {
  json::Document v = json::parse(R"({"a":[1,2]})");
  CHECK(chunk_bodies(v, 1024) == std::vector<std::string>{R"({"output":{"a":[1,2]}})"});
  json::Document s = json::parse(R"("hi")");
  CHECK(chunk_bodies(s, 1024) == std::vector<std::string>{R"({"output":"hi"})"});
}

TEST_CASE("split: strings split into pieces that fit, never inside a UTF-8 sequence") {
  const std::string text = "aé\"\n€b\x01z";
  for (std::size_t max = 20; max <= 40; ++max) {
    json::Value v(rapidjson::StringRef(text.data(), text.size()));
    const auto bodies = chunk_bodies(v, max);
    std::string joined;
    for (const auto& body : bodies) {
      CHECK(body.size() <= max);
      const auto doc = json::parse(body);
      const std::string piece(doc["output"].GetString(), doc["output"].GetStringLength());
      // Every piece is whole characters: no piece starts with a continuation byte.
      if (!piece.empty()) CHECK((static_cast<unsigned char>(piece[0]) & 0xC0) != 0x80);
      joined += piece;
    }
    CHECK(joined == text);
  }
  CHECK(json_string_size("a\"\\\n\x01") == 2 + 1 + 2 + 2 + 2 + 6);
}

TEST_CASE("split: pieces of text with 2-, 3- and 4-byte characters are each valid UTF-8") {
  std::string text;
  for (int i = 0; i < 200; ++i) text += i % 7 == 0 ? "\"" : "\xf0\x9f\x98\x80\xc3\xa9\xe2\x82\xacx";
  for (std::size_t max = 20; max <= 80; ++max) {
    CAPTURE(max);
    json::Value v(rapidjson::StringRef(text.data(), text.size()));
    std::string joined;
    for (const auto& body : chunk_bodies(v, max)) {
      CHECK(body.size() <= max);
      CHECK(utf8_valid(body));
      joined += json::get_string(json::parse(body), "output");
    }
    CHECK(joined == text);
  }
}

TEST_CASE("split: arrays split element-wise; unsplittable values raise ChunkTooLarge") {
  json::Document arr = json::parse(R"([1,22,333,"four",{"five":5}])");
  const auto bodies = chunk_bodies(arr, 24);
  std::vector<std::string> elements;
  for (const auto& body : bodies) {
    CHECK(body.size() <= 24);
    const auto doc = json::parse(body);
    REQUIRE(doc["output"].IsArray());
    for (const auto& e : doc["output"].GetArray()) elements.push_back(json::to_string(e));
  }
  CHECK(elements == std::vector<std::string>{"1", "22", "333", "\"four\"", R"({"five":5})"});
  json::Document obj = json::parse(R"({"k":"0123456789012345678901234567890"})");
  CHECK_THROWS_AS(chunk_bodies(obj, 24), ChunkTooLarge);
  json::Document big_element = json::parse(R"([1,"0123456789012345678901234567890"])");
  CHECK_THROWS_AS(chunk_bodies(big_element, 24), ChunkTooLarge);
}

}  // namespace podworker::worker

namespace podworker {

TEST_CASE("urls: templates substitute like the SDK and parameters append with & or ?") {
  CHECK(substitute_url("https://api/v2/ep/job-done/$RUNPOD_POD_ID/$ID?gpu=x", "pod", "job") ==
        "https://api/v2/ep/job-done/pod/job?gpu=x");
  CHECK(substitute_url("http://h/job-take/$ID", "pod", "pod") == "http://h/job-take/pod");
  CHECK(append_query("http://h/a?gpu=x", "b=1") == "http://h/a?gpu=x&b=1");
  CHECK(append_query("http://h/a", "b=1") == "http://h/a?b=1");
}

TEST_CASE("flags: ours and the SDK's spellings; bad values are refused") {
  WorkerOptions o;
  apply_flags(o, {"--handler", "sleep", "--concurrency=4", "--rp_serve_api", "--rp_api_port", "0",
                  "--test_input", R"({"input":1})", "--stream-buffer-bytes", "5000"});
  CHECK(o.handler == "sleep");
  CHECK(o.concurrency == 4);
  CHECK(o.serve_api);
  CHECK(o.api_port == 0);
  CHECK(o.test_input.value() == R"({"input":1})");
  CHECK(o.stream_buffer_bytes == 5000);
  CHECK_THROWS_AS(apply_flags(o, {"--concurrency", "zero"}), std::invalid_argument);
  CHECK_THROWS_AS(apply_flags(o, {"--concurrency", "0"}), std::invalid_argument);
  CHECK_THROWS_AS(apply_flags(o, {"--handler"}), std::invalid_argument);
  CHECK_THROWS_AS(apply_flags(o, {"--what"}), std::invalid_argument);
}

}  // namespace podworker

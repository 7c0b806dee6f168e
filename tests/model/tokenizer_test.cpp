// Tokenizer on the generated model's small vocabulary: always runs, no download needed.
#include <doctest/doctest.h>

#include <algorithm>

#include "model/test_model.h"
#include "model/tokenizer.h"
#include "test_files.h"

using namespace podworker::model;

namespace {

const GgufFile& small_model() {
  static const GgufFile file = GgufFile::from_bytes(build_test_model(TestModelSpec{}).to_bytes());
  return file;
}

const Tokenizer& small_tokenizer() {
  static const Tokenizer tok = Tokenizer::from_gguf(small_model());
  return tok;
}

}  // namespace

TEST_CASE("tokenizer reads the generated vocabulary") {
  const Tokenizer& tok = small_tokenizer();
  CHECK(tok.vocab_size() == 459);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.pad_id() == 2);
  CHECK(tok.is_special(1));
  CHECK_FALSE(tok.is_special(100));
  CHECK(tok.token_type(0) == TokenType::control);
  CHECK(tok.is_eog(2));
  CHECK(tok.is_eog(0));
  CHECK_FALSE(tok.is_eog(1));
  CHECK(tok.find_token("<|im_end|>") == 2);
  CHECK(tok.find_token("Ġthe").has_value());
  CHECK_FALSE(tok.find_token("no such token").has_value());
  CHECK(tok.token_text(3 + 'A') == "A");
  CHECK(tok.token_bytes(3 + ' ') == " ");  // byte 32 is spelled "Ġ" in the vocabulary
  CHECK(tok.token_text(3 + ' ') == "Ġ");
  CHECK_THROWS_AS(tok.token_bytes(459), std::out_of_range);
  CHECK_THROWS_AS(tok.token_bytes(-1), std::out_of_range);
}

TEST_CASE("merges apply: frequent words become single tokens") {
  const Tokenizer& tok = small_tokenizer();
  const auto the = tok.encode(" the");
  REQUIRE(the.size() == 1);
  CHECK(tok.token_text(the[0]) == "Ġthe");
  const auto sentence = tok.encode("The user asks the assistant.");
  CHECK(sentence.size() < std::string_view("The user asks the assistant.").size() / 2);
  CHECK(tok.decode(sentence) == "The user asks the assistant.");
}

TEST_CASE("special tokens are parsed only when asked") {
  const Tokenizer& tok = small_tokenizer();
  const auto ids = tok.encode("<|im_start|>user\nhi<|im_end|>\n");
  REQUIRE(ids.size() >= 4);
  CHECK(ids.front() == 1);
  CHECK(std::count(ids.begin(), ids.end(), 2) == 1);
  CHECK(tok.decode(ids) == "<|im_start|>user\nhi<|im_end|>\n");
  const auto raw = tok.encode("<|im_start|>", false);
  CHECK(std::find(raw.begin(), raw.end(), 1) == raw.end());
  CHECK(raw.size() > 1);
  CHECK(tok.decode(raw) == "<|im_start|>");
  CHECK(tok.encode("<|im_start|><|im_start|>") == std::vector<std::int32_t>{1, 1});
}

TEST_CASE("every byte string round-trips through encode and decode") {
  const Tokenizer& tok = small_tokenizer();
  const std::vector<std::string> fixed{"", " ", "  ", "\n", "Hello, world!", "  leading", "trailing  ",
                                       "12345 678", "I'm sure it's fine; we'll see.", "café 日本語 😀👍🏽",
                                       "<|im_start|>assistant\n", "\xff\xfe\x80 invalid", std::string("nul\0byte", 8)};
  for (const auto& s : fixed) {
    CAPTURE(s);
    CHECK(tok.decode(tok.encode(s)) == s);
    CHECK(tok.decode(tok.encode(s, false)) == s);
  }
  std::uint64_t state = 7;
  for (int i = 0; i < 500; ++i) {
    std::string s;
    const int len = static_cast<int>((state = state * 6364136223846793005ull + 1) >> 59) * 3;
    for (int j = 0; j < len; ++j) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      s += static_cast<char>(state >> 56);
    }
    CAPTURE(s);
    CHECK(tok.decode(tok.encode(s)) == s);
  }
}

TEST_CASE("token_bytes concatenate to the decoded text, split UTF-8 included") {
  const Tokenizer& tok = small_tokenizer();
  const std::string text = "naïve 日本 😀";
  std::string joined;
  for (auto id : tok.encode(text)) joined += tok.token_bytes(id);
  CHECK(joined == text);
}

TEST_CASE("long prompts encode and round-trip") {
  const Tokenizer& tok = small_tokenizer();
  std::string text;
  while (text.size() < 200000) text += "The quick brown fox jumps over the lazy dog 42 times.\n";
  text += std::string(5000, 'a');  // one very long word
  text += std::string(5000, ' ');
  const auto ids = tok.encode(text);
  CHECK(ids.size() < text.size());
  CHECK(tok.decode(ids) == text);
}

TEST_CASE("ChatML template") {
  const std::vector<Tokenizer::Message> msgs{{"system", "Be brief."}, {"user", "Hi"}, {"assistant", "Hello"}};
  CHECK(Tokenizer::apply_chat_template(msgs) ==
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
        "<|im_start|>assistant\n");
  const std::vector<Tokenizer::Message> user{{"user", "Hi"}};
  CHECK(Tokenizer::apply_chat_template(user, false) == "<|im_start|>user\nHi<|im_end|>\n");
  CHECK(Tokenizer::apply_chat_template(user, true, "Sys") ==
        "<|im_start|>system\nSys<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  CHECK(Tokenizer::apply_chat_template(msgs, true, "Sys").find("Sys") == std::string::npos);
}

TEST_CASE("tokenizer refuses vocabularies it cannot run") {
  auto with = [](auto&& edit) {
    GgufWriter w = build_test_model(TestModelSpec{});
    edit(w);
    return GgufFile::from_bytes(w.to_bytes());
  };
  CHECK_THROWS_WITH_AS(Tokenizer::from_gguf(with([](GgufWriter& w) { w.set_string("tokenizer.ggml.model", "llama"); })),
                       doctest::Contains("tokenizer model 'llama'"), GgufError);
  CHECK_THROWS_WITH_AS(Tokenizer::from_gguf(with([](GgufWriter& w) { w.set_string("tokenizer.ggml.pre", "qwen2"); })),
                       doctest::Contains("pre-tokenizer 'qwen2'"), GgufError);
  CHECK_THROWS_AS(Tokenizer::from_gguf(with([](GgufWriter& w) {
                    const std::vector<std::int32_t> types{1, 1};
                    w.set("tokenizer.ggml.token_type", MetaValue::i32_array(types));
                  })),
                  GgufError);
  CHECK_THROWS_WITH_AS(Tokenizer::from_gguf(with([](GgufWriter& w) { w.set_u32("tokenizer.ggml.eos_token_id", 100000); })),
                       doctest::Contains("outside the vocabulary"), GgufError);
  GgufWriter bare;
  bare.set_string("general.architecture", "llama");
  CHECK_THROWS_WITH_AS(Tokenizer::from_gguf(GgufFile::from_bytes(bare.to_bytes())),
                       doctest::Contains("tokenizer.ggml.model"), GgufError);
}

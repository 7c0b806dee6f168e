// The real SmolLM2-135M-Instruct tokenizer: pinned ids and round trips. Skipped, with a message,
// when models/SmolLM2-135M-Instruct.Q4_1.gguf (or $PODWORKER_MODEL) is absent.
//
// How the ids were obtained: scripts/check_tokenizer.py --print-pins, which builds an independent
// reference with Hugging Face `tokenizers` from this file's own vocabulary and merges, configured as
// SmolLM2's tokenizer.json (Digits(individual_digits) + ByteLevel GPT-2 regex, no prefix space,
// control tokens as special tokens). llama.cpp's `smollm` pre-tokenizer (\p{N} split first, then the
// GPT-2 pattern) and BPE reproduce that tokenizer; the same script checks 3,000 random strings.
#include <doctest/doctest.h>

#include "model/gguf.h"
#include "model/tokenizer.h"
#include "test_files.h"

using namespace podworker::model;

namespace {

struct Pinned {
  std::string text;
  std::vector<std::int32_t> ids;
};

const std::vector<Pinned>& pinned() {
  static const std::vector<Pinned> cases{
    {"Hello world", {19556, 905}},
    {"Hello, world! How are you today?", {19556, 28, 905, 17, 1073, 359, 346, 1834, 47}},
    {" leading space", {2899, 1898}},
    {"   three leading spaces", {256, 1296, 2899, 5600}},
    {"trailing spaces   ", {4861, 4966, 5600, 333}},
    {"multiple   spaces\tand\ttabs", {30404, 256, 5600, 197, 397, 197, 100, 7366}},
    {"line one\nline two\n\n\nline five\n", {1311, 582, 198, 1311, 827, 1116, 198, 1311, 2531, 198}},
    {"12345", {33, 34, 35, 36, 37}},
    {"Pi is 3.14159 and 1,000,000 is a million.", {41967, 314, 216, 35, 30, 33, 36, 33, 37, 41, 284, 216, 33, 28, 32, 32, 32, 28, 32, 32, 32, 314, 253, 2215, 30}},
    {"I'm sure it's fine, isn't it? We'll see what they've done; you'd like it.", {57, 5248, 2090, 357, 506, 4979, 28, 3247, 982, 357, 47, 1046, 3060, 963, 732, 502, 3543, 2294, 43, 346, 6737, 702, 357, 30}},
    {"IT'S LOUD AND YOU'RE LATE", {2901, 23, 67, 16887, 11911, 7485, 12246, 23, 3256, 450, 9081}},
    {"Punctuation!!! (brackets) [square] {curly} <angle> \"quotes\" 'single' -- dash... end?!", {64, 8859, 6584, 29646, 365, 6838, 936, 1175, 25, 933, 20170, 77, 1662, 1855, 318, 109, 2067, 6935, 46, 476, 385, 2346, 18, 637, 18536, 23, 3009, 20740, 2026, 1112, 17593}},
    {"café naïve résumé", {83, 1939, 2756, 15486, 46494, 412, 2756, 5422, 2756}},
    {"日本語のテキスト", {23274, 115, 40993, 179, 120, 248, 26453, 11100, 224, 10391, 251, 10391, 134, 11100, 226}},
    {"emoji: 😀👍🏽 🚀", {391, 33777, 42, 40303, 218, 10813, 235, 231, 10813, 233, 138, 15107, 244, 218}},
    {"<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n", {1, 4093, 198, 1780, 314, 216, 34, 27, 34, 47, 2, 198, 1, 520, 9531, 198}},
    {"<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n", {1, 9690, 198, 2683, 359, 253, 5356, 5646, 11173, 3365, 3511, 308, 34519, 28, 7018, 411, 407, 19712, 8182, 2, 198}},
    {"def f(x):\n    return x ** 2  # square\n", {1604, 275, 24, 104, 727, 472, 1003, 1792, 1903, 216, 34, 216, 907, 5222, 198}},
    {"", {}},
  };
  return cases;
}

// Loaded once: building the 49,152-token vocabulary is the slow part under sanitizers.
const Tokenizer& real_tokenizer(const std::string& path) {
  static const Tokenizer tok = Tokenizer::from_gguf(GgufFile::open(path));
  return tok;
}

}  // namespace

TEST_CASE("real model: GGUF header, metadata and tensors as the gguf package reports them") {
  const auto path = podworker::model::testing::real_model_path();
  if (!path) {
    MESSAGE("skipped: SmolLM2-135M-Instruct.Q4_1.gguf is absent (run scripts/fetch-model.sh)");
    return;
  }
  const GgufFile f = GgufFile::open(*path);
  CHECK(f.version() == 3);
  CHECK(f.file_size() == 98362432);
  CHECK(f.alignment() == 32);
  CHECK(f.data_offset() == 1785664);
  CHECK(f.metadata().size() == 33);
  CHECK(f.tensors().size() == 272);
  CHECK_NOTHROW(f.require_architecture("llama"));
  CHECK(f.get_int("llama.block_count") == 30);
  CHECK(f.get_int("llama.context_length") == 8192);
  CHECK(f.get_int("llama.embedding_length") == 576);
  CHECK(f.get_int("llama.feed_forward_length") == 1536);
  CHECK(f.get_int("llama.attention.head_count") == 9);
  CHECK(f.get_int("llama.attention.head_count_kv") == 3);
  CHECK(f.get_int("llama.rope.dimension_count") == 64);
  CHECK(f.get_int("llama.vocab_size") == 49152);
  CHECK(f.get_float("llama.rope.freq_base") == 100000.0);
  CHECK(f.at("llama.attention.layer_norm_rms_epsilon").as_float() == static_cast<double>(1e-5f));
  CHECK(f.get_string("tokenizer.ggml.pre") == "smollm");
  CHECK(f.get_string_array("tokenizer.ggml.merges").size() == 48900);
  const TensorInfo& embd = f.tensor("token_embd.weight");
  CHECK(embd.type == podworker::kernels::GgmlType::q8_0);
  CHECK(embd.shape == std::vector<std::int64_t>{576, 49152});
  CHECK(embd.offset == 0);
  CHECK(embd.bytes == 30081024);
  const TensorInfo& down = f.tensor("blk.0.ffn_down.weight");
  CHECK(down.type == podworker::kernels::GgmlType::q4_1);
  CHECK(down.shape == std::vector<std::int64_t>{1536, 576});
  CHECK(down.offset == 31868992 - 1785664);
  CHECK(f.find_tensor("output.weight") == nullptr);  // tied to token_embd
  int q4_1 = 0, f32 = 0, q8_0 = 0;
  for (const auto& t : f.tensors()) {
    q4_1 += t.type == podworker::kernels::GgmlType::q4_1;
    f32 += t.type == podworker::kernels::GgmlType::f32;
    q8_0 += t.type == podworker::kernels::GgmlType::q8_0;
  }
  CHECK(q4_1 == 210);
  CHECK(f32 == 61);
  CHECK(q8_0 == 1);
}

TEST_CASE("real model: fixed strings encode to the pinned ids and decode back") {
  const auto path = podworker::model::testing::real_model_path();
  if (!path) {
    MESSAGE("skipped: SmolLM2-135M-Instruct.Q4_1.gguf is absent (run scripts/fetch-model.sh)");
    return;
  }
  const Tokenizer& tok = real_tokenizer(*path);
  CHECK(tok.vocab_size() == 49152);
  CHECK(tok.bos_id() == 1);
  CHECK(tok.eos_id() == 2);
  CHECK(tok.token_text(2) == "<|im_end|>");
  CHECK(tok.is_eog(2));
  CHECK(tok.is_eog(0));
  for (const auto& p : pinned()) {
    CAPTURE(p.text);
    CHECK(tok.encode(p.text) == p.ids);
    CHECK(tok.decode(p.ids) == p.text);
  }
  const std::vector<Tokenizer::Message> chat{{"user", "What is 2+2?"}};
  CHECK(tok.encode(Tokenizer::apply_chat_template(chat)) == pinned()[15].ids);
}

TEST_CASE("real model: text round-trips through encode and decode") {
  const auto path = podworker::model::testing::real_model_path();
  if (!path) {
    MESSAGE("skipped: SmolLM2-135M-Instruct.Q4_1.gguf is absent (run scripts/fetch-model.sh)");
    return;
  }
  const Tokenizer& tok = real_tokenizer(*path);
  // Any UTF-8 text round-trips; SmolLM2's vocabulary has no token for 21 bytes (controls such as
  // 0x04, and bytes that never occur in UTF-8), which are dropped like llama.cpp drops them.
  const char* pieces[] = {"the", " ", "  ", "\n", "\t", "Hello", "42", "3.14", "'s", "'LL", "café", "日本語", "😀",
                          "👍🏽", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "!", "?!", "\r\n", "ß", "Ω", "½"};
  std::uint64_t state = 99;
  for (int i = 0; i < 400; ++i) {
    std::string s;
    const int n = static_cast<int>(i % 17);
    for (int j = 0; j < n; ++j) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      s += pieces[(state >> 33) % std::size(pieces)];
    }
    CAPTURE(s);
    CHECK(tok.decode(tok.encode(s)) == s);
    CHECK(tok.decode(tok.encode(s, false)) == s);
  }
  CHECK(tok.encode("\x04").empty());
}

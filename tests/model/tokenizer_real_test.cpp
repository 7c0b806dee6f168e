// The real SmolLM2-135M-Instruct tokenizer: pinned ids and round trips. Skipped, with a message,
// when models/SmolLM2-135M-Instruct.Q4_1.gguf (or $PODWORKER_MODEL) is absent.
//
// How the ids were obtained: llama.cpp's own tokenizer, `llama-tokenize -m MODEL -f FILE --ids --no-bos
// --no-escape` (special tokens parsed, as encode() does by default), built from the llama.cpp source
// vendored in llama-cpp-python 0.3.36 (llama.cpp commit 0c1e570). The GGUF's pre-tokenizer is `smollm`:
// each \p{N} split off alone, then the GPT-2 pattern, then byte-level BPE, with control tokens such as
// <|im_start|> matched verbatim. Beyond these pins, ~860 more strings (code, numbers, contractions,
// whitespace runs, many scripts, emoji, control tokens mid-text, random code points) gave the same ids
// from llama-tokenize and from `make_test_model tokenize`, with and without special-token parsing;
// scripts/check_tokenizer.py compares against Hugging Face `tokenizers` configured as SmolLM2's
// tokenizer.json, which agrees with llama.cpp on this vocabulary.
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
    // Control tokens other than the chat ones, one glued to text, and an unfinished one left as text.
    {"text<|im_end|>text <|endoftext|><repo_name>r<file_sep>f <|im_start", {2692, 2, 2692, 216, 0, 3, 98, 5, 86, 2067, 108, 306, 79, 3738}},
    // CR LF, and Unicode spaces (no-break, ideographic, em): \s runs, never the ' ' a word may take along.
    {"Windows\r\nline\u00a0nbsp\u3000ideographic\u2003em\t \n", {25283, 201, 198, 1311, 15442, 94, 32093, 12109, 218, 489, 4551, 321, 221, 391, 197, 3717}},
    // \p{N} beyond ASCII digits (Arabic-Indic, vulgar fraction, Roman numeral, superscripts), split one by one.
    {"\u0661\u0662\u0663 \u00bd \u216b x\u00b2\u00b3 1234567 0.5e-3", {164, 111, 164, 112, 164, 113, 216, 16738, 216, 173, 223, 121, 1792, 19133, 39050, 216, 33, 34, 35, 36, 37, 38, 39, 216, 32, 30, 37, 85, 29, 35}},
    // Cyrillic, a combining accent (\p{M}, not a letter), a curly apostrophe (no contraction), ZWJ emoji.
    {"Русский текст, привет! e\u0301 don\u2019t 👨\u200d👩\u200d👧\u200d👦", {155, 250, 14714, 9382, 39511, 7872, 24958, 38106, 6643, 13760, 24674, 28, 21985, 46879, 16464, 32547, 17, 297, 151, 219, 1326, 417, 100, 15107, 235, 118, 321, 231, 10813, 235, 119, 321, 231, 10813, 235, 117, 321, 231, 10813, 235, 116}},
    {"std::vector<int> v{1,2,3}; // x+=1\n\tif (a != b) return;", {10491, 9533, 16714, 44, 591, 46, 386, 107, 33, 28, 34, 28, 35, 48781, 13241, 1792, 32657, 33, 198, 197, 342, 365, 81, 6541, 278, 25, 1003, 43}},
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

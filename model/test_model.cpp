// Generated test models. The vocabulary is real byte-level BPE: 3 ChatML special tokens, the 256
// byte tokens, then merges learned (deterministically) from a fixed English text by the classic BPE
// training loop, so tokenizer and model code paths run exactly as with a downloaded model. Weights
// are seeded pseudo-random values quantized with ggml's reference rounding rules.
#include "model/test_model.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>

#include "kernels/dequantize.h"
#include "model/pretokenizer.h"
#include "model/tokenizer.h"

namespace podworker::model {

using kernels::GgmlType;

namespace {

// Text the small vocabulary's merges are learned from (written for this purpose).
constexpr std::string_view kCorpus =
    "The quick brown fox jumps over the lazy dog. A worker takes a job from the queue, runs the "
    "handler, and sends the result back to the endpoint. The user asks a question and the assistant "
    "answers it. You are a helpful assistant. What is the capital of France? The capital of France is "
    "Paris. How many legs does a spider have? A spider has eight legs. Tell me a story about a small "
    "robot that learns to paint. Once upon a time there was a small robot who lived in a quiet town. "
    "Every morning the robot watched the sun rise over the hills and wished it could paint the colors "
    "it saw. The system starts the model, loads the weights, and streams the tokens to the client as "
    "they are generated. It's a good day, isn't it? We'll see what they've done, and I'm sure you'd "
    "like it. Numbers like 12, 345 and 2024 are split into digits. In the beginning the tokens were "
    "bytes; then the most frequent pairs were merged into longer tokens, one rank at a time. The "
    "answer is yes. The answer is no. Hello, world! Hello there, how are you today? I am fine, thank "
    "you. Please write a short poem about the sea, the wind and the stars at night.";

// GPT-2's byte-to-unicode spelling of one byte, as UTF-8.
std::string byte_spelling(int b) {
  const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  char32_t cp;
  if (printable) {
    cp = static_cast<char32_t>(b);
  } else {
    int n = 0;
    for (int x = 0; x < b; ++x) {
      const bool p = (x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255);
      if (!p) ++n;
    }
    cp = static_cast<char32_t>(256 + n);
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

struct Vocabulary {
  std::vector<std::string> tokens;
  std::vector<std::int32_t> types;
  std::vector<std::string> merges;
};

// Classic BPE training: repeatedly merge the most frequent adjacent pair (ties broken by the
// pair's spelling, so the result does not depend on hash order).
Vocabulary build_vocabulary(std::int32_t vocab) {
  Vocabulary v;
  v.tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  v.types = {3, 3, 3};
  for (int b = 0; b < 256; ++b) {
    v.tokens.push_back(byte_spelling(b));
    v.types.push_back(1);
  }
  const auto base = static_cast<std::int32_t>(v.tokens.size());
  constexpr std::int32_t kDefaultMerges = 200;
  if (vocab != 0 && vocab < base) {
    throw std::invalid_argument("vocab must be 0 or at least " + std::to_string(base));
  }
  const std::int32_t merges = vocab == 0 ? kDefaultMerges : std::min(kDefaultMerges, vocab - base);

  std::vector<std::string_view> pieces;
  pretokenize(PreTokenizer::smollm, kCorpus, pieces);
  std::map<std::vector<std::string>, int> words;
  for (auto piece : pieces) {
    std::vector<std::string> symbols;
    for (char c : piece) symbols.push_back(byte_spelling(static_cast<unsigned char>(c)));
    ++words[symbols];
  }
  for (std::int32_t m = 0; m < merges; ++m) {
    std::map<std::pair<std::string, std::string>, int> counts;
    for (const auto& [symbols, freq] : words) {
      for (std::size_t i = 0; i + 1 < symbols.size(); ++i) counts[{symbols[i], symbols[i + 1]}] += freq;
    }
    if (counts.empty()) break;
    auto best = counts.begin();
    for (auto it = counts.begin(); it != counts.end(); ++it) {
      if (it->second > best->second) best = it;  // map order breaks ties
    }
    const auto [left, right] = best->first;
    v.merges.push_back(left + " " + right);
    v.tokens.push_back(left + right);
    v.types.push_back(1);
    std::map<std::vector<std::string>, int> merged;
    for (const auto& [symbols, freq] : words) {
      std::vector<std::string> out;
      for (std::size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == left && symbols[i + 1] == right) {
          out.push_back(left + right);
          ++i;
        } else {
          out.push_back(symbols[i]);
        }
      }
      merged[out] += freq;
    }
    words = std::move(merged);
  }
  // Pad to the requested size with tokens no text produces.
  for (auto i = static_cast<std::int32_t>(v.tokens.size()); i < vocab; ++i) {
    v.tokens.push_back("<unused_" + std::to_string(i) + ">");
    v.types.push_back(5);
  }
  return v;
}

// splitmix64: a tiny generator whose output is the same on every platform and library.
class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  float uniform(float lo, float hi) {
    return lo + (hi - lo) * static_cast<float>(next() >> 40) * (1.0f / 16777216.0f);
  }

 private:
  std::uint64_t state_;
};

// The weights in `type`, quantized as ggml's reference quantizers do (kernels/cpu: the one home of
// every quantizer); the row length must fit the type's block.
std::vector<std::byte> encode(GgmlType type, std::span<const float> x) {
  switch (type) {
    case GgmlType::f32:
    case GgmlType::f16:
    case GgmlType::bf16:
    case GgmlType::q4_0:
    case GgmlType::q4_1:
    case GgmlType::q5_0:
    case GgmlType::q8_0:
    case GgmlType::q4_k:
    case GgmlType::q5_k:
    case GgmlType::q6_k: {
      std::vector<std::byte> out(kernels::tensor_bytes(type, static_cast<std::int64_t>(x.size())));
      kernels::cpu::quantize(type, x.data(), out.data(), static_cast<std::int64_t>(x.size()));
      return out;
    }
    default:
      throw std::invalid_argument("test models cannot hold " + std::string(kernels::type_name(type)) + " tensors");
  }
}

std::uint32_t file_type_of(GgmlType t) {
  // llama.cpp's llama_ftype numbers for an all-one-type model.
  switch (t) {
    case GgmlType::f32: return 0;
    case GgmlType::f16: return 1;
    case GgmlType::q4_0: return 2;
    case GgmlType::q4_1: return 3;
    case GgmlType::q8_0: return 7;
    case GgmlType::q5_0: return 8;
    case GgmlType::q4_k: return 14;
    case GgmlType::q5_k: return 16;
    case GgmlType::q6_k: return 18;
    case GgmlType::bf16: return 32;
    default: return 0;
  }
}

constexpr const char* kChatTemplate =
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}{{ "
    "'<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% "
    "endif %}";

}  // namespace

TestModelSpec TestModelSpec::smollm2_135m() {
  TestModelSpec s;
  s.hidden = 576;
  s.layers = 30;
  s.heads = 9;
  s.kv_heads = 3;
  s.ffn = 1536;
  s.vocab = 49152;
  s.context = 8192;
  s.rope_freq_base = 100000.0f;
  s.rms_epsilon = 1e-5f;
  return s;
}

GgufWriter build_test_model(const TestModelSpec& spec) {
  auto positive = [](std::int32_t v, const char* what) {
    if (v <= 0) throw std::invalid_argument(std::string(what) + " must be positive");
  };
  positive(spec.hidden, "hidden");
  positive(spec.layers, "layers");
  positive(spec.heads, "heads");
  positive(spec.kv_heads, "kv_heads");
  positive(spec.ffn, "ffn");
  positive(spec.context, "context");
  if (spec.hidden % spec.heads != 0) throw std::invalid_argument("hidden must be a multiple of heads");
  if (spec.heads % spec.kv_heads != 0) throw std::invalid_argument("heads must be a multiple of kv_heads");
  const std::int32_t head_dim = spec.hidden / spec.heads;
  if (head_dim % 2 != 0) throw std::invalid_argument("the head dimension must be even (rotary pairs)");

  const Vocabulary vocab = build_vocabulary(spec.vocab);
  const auto n_vocab = static_cast<std::int64_t>(vocab.tokens.size());

  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_string("general.type", "model");
  w.set_string("general.name", "podworker test model");
  w.set_u32("llama.block_count", static_cast<std::uint32_t>(spec.layers));
  w.set_u32("llama.context_length", static_cast<std::uint32_t>(spec.context));
  w.set_u32("llama.embedding_length", static_cast<std::uint32_t>(spec.hidden));
  w.set_u32("llama.feed_forward_length", static_cast<std::uint32_t>(spec.ffn));
  w.set_u32("llama.attention.head_count", static_cast<std::uint32_t>(spec.heads));
  w.set_u32("llama.attention.head_count_kv", static_cast<std::uint32_t>(spec.kv_heads));
  w.set_f32("llama.rope.freq_base", spec.rope_freq_base);
  w.set_f32("llama.attention.layer_norm_rms_epsilon", spec.rms_epsilon);
  w.set_u32("general.file_type", file_type_of(spec.weight_type));
  w.set_u32("llama.vocab_size", static_cast<std::uint32_t>(n_vocab));
  w.set_u32("llama.rope.dimension_count", static_cast<std::uint32_t>(head_dim));
  w.set_bool("tokenizer.ggml.add_space_prefix", false);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  w.set_string("tokenizer.ggml.model", "gpt2");
  w.set_string("tokenizer.ggml.pre", "smollm");
  w.set("tokenizer.ggml.tokens", MetaValue::string_array(vocab.tokens));
  w.set("tokenizer.ggml.token_type", MetaValue::i32_array(vocab.types));
  w.set("tokenizer.ggml.merges", MetaValue::string_array(vocab.merges));
  w.set_u32("tokenizer.ggml.bos_token_id", 1);
  w.set_u32("tokenizer.ggml.eos_token_id", 2);
  w.set_u32("tokenizer.ggml.unknown_token_id", 0);
  w.set_u32("tokenizer.ggml.padding_token_id", 2);
  w.set_string("tokenizer.chat_template", kChatTemplate);
  w.set_u32("general.quantization_version", 2);

  Random rng(spec.seed);
  auto matrix = [&](const std::string& name, GgmlType type, std::int64_t cols, std::int64_t rows, float scale) {
    std::vector<float> x(static_cast<std::size_t>(cols * rows));
    for (auto& f : x) f = rng.uniform(-scale, scale);
    std::vector<std::int64_t> shape{cols, rows};
    try {
      (void)tensor_bytes(type, shape);
    } catch (const GgufError& e) {
      throw GgufError("tensor '" + name + "': " + e.what());
    }
    w.add_tensor(name, type, std::move(shape), encode(type, x));
  };
  auto norm = [&](const std::string& name) {
    std::vector<float> x(static_cast<std::size_t>(spec.hidden));
    for (auto& f : x) f = 1.0f + rng.uniform(-0.1f, 0.1f);
    w.add_tensor(name, GgmlType::f32, {spec.hidden}, encode(GgmlType::f32, x));
  };

  const std::int64_t kv_dim = static_cast<std::int64_t>(head_dim) * spec.kv_heads;
  const float in_scale = 1.0f / std::sqrt(static_cast<float>(spec.hidden));
  const float ffn_scale = 1.0f / std::sqrt(static_cast<float>(spec.ffn));
  // Same tensors in the same order as SmolLM2-135M-Instruct.Q4_1.gguf.
  matrix("token_embd.weight", spec.embedding_type, spec.hidden, n_vocab, 0.5f);
  for (std::int32_t l = 0; l < spec.layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    norm(p + "attn_norm.weight");
    matrix(p + "ffn_down.weight", spec.weight_type, spec.ffn, spec.hidden, ffn_scale);
    matrix(p + "ffn_gate.weight", spec.weight_type, spec.hidden, spec.ffn, in_scale);
    matrix(p + "ffn_up.weight", spec.weight_type, spec.hidden, spec.ffn, in_scale);
    norm(p + "ffn_norm.weight");
    matrix(p + "attn_k.weight", spec.weight_type, spec.hidden, kv_dim, in_scale);
    matrix(p + "attn_output.weight", spec.weight_type, spec.hidden, spec.hidden, in_scale);
    matrix(p + "attn_q.weight", spec.weight_type, spec.hidden, spec.hidden, in_scale);
    matrix(p + "attn_v.weight", spec.weight_type, spec.hidden, kv_dim, in_scale);
  }
  if (!spec.tied_output) matrix("output.weight", spec.weight_type, spec.hidden, n_vocab, in_scale);
  norm("output_norm.weight");
  return w;
}

void write_test_model(const std::string& path, const TestModelSpec& spec) { build_test_model(spec).write(path); }

}  // namespace podworker::model

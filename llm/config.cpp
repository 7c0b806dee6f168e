#include "llm/config.h"

#include <sstream>

#include "model/gguf.h"

namespace podworker::llm {

namespace {

int positive_int(const model::GgufFile& file, const std::string& key) {
  const model::MetaValue* v = file.find(key);
  if (v == nullptr) throw ModelError("model metadata lacks " + key);
  if (!v->is_integer()) throw ModelError("model metadata " + key + " is not an integer");
  const std::int64_t n = v->as_int();
  if (n <= 0 || n > (1 << 30)) throw ModelError("model metadata " + key + " is out of range: " + std::to_string(n));
  return static_cast<int>(n);
}

}  // namespace

LlamaConfig LlamaConfig::from_gguf(const model::GgufFile& file) {
  const model::MetaValue* arch = file.find("general.architecture");
  if (arch == nullptr || !arch->is_string()) throw ModelError("model metadata lacks general.architecture");
  if (arch->as_string() != "llama") {
    throw ModelError("unsupported model architecture \"" + arch->as_string() + "\": only \"llama\" is supported");
  }
  try {
    LlamaConfig c;
    c.n_embd = positive_int(file, "llama.embedding_length");
    c.n_layer = positive_int(file, "llama.block_count");
    c.n_head = positive_int(file, "llama.attention.head_count");
    c.n_head_kv = file.find("llama.attention.head_count_kv") ? positive_int(file, "llama.attention.head_count_kv")
                                                             : c.n_head;
    c.n_ff = positive_int(file, "llama.feed_forward_length");
    c.n_ctx_train = positive_int(file, "llama.context_length");
    c.rms_eps = static_cast<float>(file.get_float_or("llama.attention.layer_norm_rms_epsilon", 1e-5));
    c.rope_freq_base = static_cast<float>(file.get_float_or("llama.rope.freq_base", 10000.0));
    if (file.find("llama.vocab_size")) {
      c.n_vocab = positive_int(file, "llama.vocab_size");
    } else {
      const model::MetaValue* tokens = file.find("tokenizer.ggml.tokens");
      if (tokens == nullptr || !tokens->is_array()) {
        throw ModelError("model metadata has neither llama.vocab_size nor tokenizer.ggml.tokens");
      }
      c.n_vocab = static_cast<int>(tokens->size());
    }
    if (c.n_head > 0 && c.n_embd % c.n_head == 0) c.head_dim = c.n_embd / c.n_head;
    if (file.find("llama.rope.dimension_count")) {
      const int rope_dims = positive_int(file, "llama.rope.dimension_count");
      if (rope_dims != c.head_dim) {
        throw ModelError("llama.rope.dimension_count " + std::to_string(rope_dims) +
                         " differs from the head size " + std::to_string(c.head_dim) + " (partial RoPE is unsupported)");
      }
    }
    c.validate();
    return c;
  } catch (const model::GgufError& e) {
    throw ModelError(std::string("bad llama metadata: ") + e.what());
  }
}

void LlamaConfig::validate() const {
  if (n_vocab <= 0 || n_embd <= 0 || n_layer <= 0 || n_head <= 0 || n_head_kv <= 0 || n_ff <= 0) {
    throw ModelError("model sizes must be positive: " + describe());
  }
  if (n_embd % n_head != 0 || head_dim != n_embd / n_head) {
    throw ModelError("hidden size is not a multiple of the head count: " + describe());
  }
  if (head_dim % 2 != 0) throw ModelError("head size must be even for RoPE: " + describe());
  if (n_head % n_head_kv != 0) throw ModelError("query heads are not a multiple of KV heads: " + describe());
  if (!(rms_eps > 0.0f) || !(rope_freq_base > 0.0f)) throw ModelError("bad epsilon or RoPE base: " + describe());
}

std::string LlamaConfig::describe() const {
  std::ostringstream s;
  s << "llama vocab=" << n_vocab << " hidden=" << n_embd << " layers=" << n_layer << " heads=" << n_head << "/"
    << n_head_kv << " head_dim=" << head_dim << " ffn=" << n_ff << " ctx=" << n_ctx_train
    << " rope_base=" << rope_freq_base << " eps=" << rms_eps;
  return s.str();
}

}  // namespace podworker::llm

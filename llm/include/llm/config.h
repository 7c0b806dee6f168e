// Hyper-parameters of a llama-architecture model, read from a GGUF file's `llama.*` metadata.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace podworker::model {
class GgufFile;
}

namespace podworker::llm {

// A model file the engine cannot run: wrong architecture, missing tensor, wrong shape or type.
class ModelError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct LlamaConfig {
  int n_vocab = 0;
  int n_embd = 0;       // hidden size
  int n_layer = 0;
  int n_head = 0;       // query heads
  int n_head_kv = 0;    // key/value heads (grouped-query attention when < n_head)
  int head_dim = 0;     // n_embd / n_head
  int n_ff = 0;         // feed-forward width
  int n_ctx_train = 0;  // context length the model was trained for
  float rms_eps = 1e-5f;
  float rope_freq_base = 10000.0f;

  int kv_dim() const { return n_head_kv * head_dim; }
  int group_size() const { return n_head / n_head_kv; }  // query heads per KV head

  // Reads `general.architecture` (must be "llama") and the `llama.*` keys; the vocabulary size
  // comes from `llama.vocab_size` or, when absent, the tokenizer's token list. Throws ModelError
  // naming the problem.
  static LlamaConfig from_gguf(const model::GgufFile& file);

  // Throws ModelError unless the sizes are positive and consistent (heads divide the width, ...).
  void validate() const;
  std::string describe() const;
};

}  // namespace podworker::llm

// Views of a llama model's tensors inside a memory-mapped GGUF file, checked for shape and type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "kernels/ggml_types.h"
#include "llm/config.h"

namespace podworker::model {
class GgufFile;
}

namespace podworker::llm {

// A 1-D or 2-D tensor: `rows` rows of `cols` elements (ggml's shape[0] is `cols`). Non-owning:
// `data` points into the GGUF mapping that LlamaWeights keeps alive.
struct TensorView {
  std::string name;
  kernels::GgmlType type = kernels::GgmlType::f32;
  std::int64_t cols = 0;
  std::int64_t rows = 1;
  const std::byte* data = nullptr;
  std::size_t bytes = 0;

  std::size_t row_bytes() const {
    return static_cast<std::size_t>(cols / kernels::block_elements(type)) * kernels::block_bytes(type);
  }
  const std::byte* row(std::int64_t r) const { return data + static_cast<std::size_t>(r) * row_bytes(); }
};

struct LayerWeights {
  TensorView attn_norm;  // [n_embd] f32
  TensorView wq;         // n_embd rows of n_embd (q heads permuted as GGUF stores them)
  TensorView wk;         // kv_dim rows of n_embd
  TensorView wv;         // kv_dim rows of n_embd
  TensorView wo;         // n_embd rows of n_embd
  TensorView ffn_norm;   // [n_embd] f32
  TensorView w_gate;     // n_ff rows of n_embd
  TensorView w_up;       // n_ff rows of n_embd
  TensorView w_down;     // n_embd rows of n_ff
};

// Types a matrix may have: those the CPU backend has dot products for.
bool is_matrix_type(kernels::GgmlType type);

class LlamaWeights {
 public:
  // Takes shared ownership of the file so the views stay valid. Throws ModelError for a wrong
  // architecture, a missing tensor, or a shape or type the engine does not support.
  static std::shared_ptr<const LlamaWeights> from_gguf(std::shared_ptr<const model::GgufFile> file);

  const LlamaConfig& config() const { return config_; }
  const TensorView& token_embd() const { return token_embd_; }   // n_vocab rows of n_embd
  const TensorView& output_norm() const { return output_norm_; }  // [n_embd] f32
  // The LM head: `output.weight`, or token_embd when the file ties them (no output.weight).
  const TensorView& output() const { return tied_output_ ? token_embd_ : output_; }
  bool tied_output() const { return tied_output_; }
  const std::vector<LayerWeights>& layers() const { return layers_; }
  const model::GgufFile& file() const { return *file_; }

 private:
  std::shared_ptr<const model::GgufFile> file_;
  LlamaConfig config_;
  TensorView token_embd_;
  TensorView output_norm_;
  TensorView output_;
  bool tied_output_ = false;
  std::vector<LayerWeights> layers_;
};

// f32 copy of one row of a matrix of any supported type (embedding lookup, references).
void dequantize_row(const TensorView& t, std::int64_t row, float* out);

}  // namespace podworker::llm

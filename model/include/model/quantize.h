// Requantizing a GGUF model: every matrix to one ggml type, or llama.cpp's Q4_K_M mix. Used to make
// K-quant test models and to turn a downloaded file into the layouts people run.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "kernels/ggml_types.h"
#include "model/gguf.h"

namespace podworker::model {

// What to write. `mix` "Q4_K_M" follows llama.cpp's llama_tensor_get_type for
// LLAMA_FTYPE_MOSTLY_Q4_K_M on a dense llama model: Q4_K everywhere, Q6_K for the LM head
// (token_embd when tied) and for attn_v / ffn_down in the layers use_more_bits picks (the first and
// last eighth, every third between). A row length that is not a multiple of 256 cannot hold a
// K-quant; as llama.cpp does, such tensors fall back: Q4_K -> Q5_0, Q6_K -> Q8_0 (Q5_K -> Q8_0
// here; llama.cpp's Q5_1 we lack), unless keep_source_fallback keeps the source type. Q5_0 is
// written with a least-squares scale search (kquant::quantize_q5_0_search), not ggml's max / -16
// reference scale: on SmolLM2, whose 576-wide matrices mostly take that fallback, it brings the
// Q4_1 file requantized with llama.cpp's fallback types from +3.6 % to +1.6 % perplexity over the
// original's (docs/benchmarks.md).
struct QuantizeTarget {
  kernels::GgmlType type = kernels::GgmlType::q4_k;  // every matrix (when mix is empty)
  std::string mix;                                   // "Q4_K_M" or empty
  std::string name;                                  // as given ("Q4_K", "Q4_K_M", ...)
  // Where a row cannot hold the wanted K-quant and the source is already a 32-element block type
  // (Q4_0, Q4_1, Q5_0, Q8_0) no larger than the fallback, the tensor keeps its source type: the
  // fallback's grid does not contain the source's, so requantizing could only add rounding error,
  // and the file would grow. false: llama.cpp's fallback types regardless of the source.
  bool keep_source_fallback = true;
};

// Parses a type name (F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q8_0 Q4_K Q5_K Q6_K) or "Q4_K_M"; throws
// std::invalid_argument naming the choices.
QuantizeTarget parse_quantize_target(std::string_view name);

struct TensorChoice {
  std::string name;
  kernels::GgmlType from = kernels::GgmlType::f32;
  kernels::GgmlType to = kernels::GgmlType::f32;
};

// The type `target` gives each tensor of `in` (1-D tensors keep theirs). Throws GgufError for a
// tensor whose type cannot be dequantized.
std::vector<TensorChoice> plan_quantization(const GgufFile& in, const QuantizeTarget& target);

// A copy of `in` with its tensors converted as plan_quantization says (a tensor already of its
// target type is copied unchanged) and general.file_type set to llama.cpp's number for the target.
// `threads` > 1 quantizes tensors in parallel.
GgufWriter requantize(const GgufFile& in, const QuantizeTarget& target, int threads = 1);

}  // namespace podworker::model

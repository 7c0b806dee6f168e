// Generated llama-architecture GGUF models with seeded random weights, laid out exactly like
// SmolLM2-135M-Instruct's file (same metadata keys and types, same tensor names and order, tied
// output embedding), so tests and benchmarks need no download.
#pragma once

#include <cstdint>
#include <string>

#include "kernels/ggml_types.h"
#include "model/gguf.h"

namespace podworker::model {

struct TestModelSpec {
  std::int32_t hidden = 64;      // llama.embedding_length
  std::int32_t layers = 2;       // llama.block_count
  std::int32_t heads = 4;        // llama.attention.head_count
  std::int32_t kv_heads = 2;     // llama.attention.head_count_kv
  std::int32_t ffn = 128;        // llama.feed_forward_length
  // 0: the built-in small byte-level vocabulary (256 byte tokens, ChatML specials and merges
  // learned from a fixed English text). Larger: that vocabulary padded with filler tokens up to
  // `vocab` (SmolLM2's 49152 for its exact shapes); the tokenizer still works.
  std::int32_t vocab = 0;
  std::int32_t context = 2048;   // llama.context_length
  float rope_freq_base = 100000.0f;
  float rms_epsilon = 1e-5f;
  std::uint64_t seed = 1;
  kernels::GgmlType weight_type = kernels::GgmlType::q4_1;     // attention and FFN matrices
  kernels::GgmlType embedding_type = kernels::GgmlType::q8_0;  // token_embd (also the output)
  bool tied_output = true;  // false: write a separate output.weight (same type as weight_type)

  // SmolLM2-135M's shapes: 576 hidden, 30 layers, 9/3 heads, 1536 FFN, 49152 vocab, 8192 context.
  static TestModelSpec smollm2_135m();
};

// Builds the model in memory; throws GgufError (or std::invalid_argument) for an impossible spec,
// e.g. a hidden size that is not a multiple of the head count or of the weight type's block size.
GgufWriter build_test_model(const TestModelSpec& spec);
void write_test_model(const std::string& path, const TestModelSpec& spec);

}  // namespace podworker::model

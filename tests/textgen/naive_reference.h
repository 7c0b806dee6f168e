// A deliberately plain llama forward pass: every weight dequantized to f32, f32 activations, one
// token at a time, textbook loops. The test oracle for the backends.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "llm/weights.h"

namespace podworker::testing {

// Logits [tokens.size()][n_vocab] for positions 0..n-1 of one sequence.
std::vector<float> naive_forward(const llm::LlamaWeights& w, std::span<const std::int32_t> tokens);

}  // namespace podworker::testing

// Token sampling: greedy, temperature, top-k and top-p with a counter-based random number, so a
// device draws the same token as the CPU from (seed, step, logits) without carrying RNG state.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "kernels/sampling.h"

namespace podworker::llm {

struct SamplingParams {
  float temperature = 0.0f;  // <= 0: greedy (argmax, lowest id on ties)
  int top_k = 0;             // <= 0: no top-k cut
  float top_p = 1.0f;        // >= 1: no nucleus cut
  std::uint64_t seed = 0;

  bool greedy() const { return temperature <= 0.0f; }
};

// What one sequence samples for one token: its parameters and the index of the token being drawn
// (0 for the first generated token), which picks the random number.
struct SampleSpec {
  SamplingParams params;
  std::uint64_t step = 0;
};

// Sampling follows the one definition in kernels/sampling.h (temperature, top-k, top-p, then a
// Philox4x32-10 draw with counter = spec.step), the same one the CUDA backend runs on the device:
// the same seed and logits give the same token on the CPU and on a GPU.
//
// sample_token is the fast CPU implementation (the decode path): it orders only the few weights
// the nucleus reaches instead of the whole vocabulary. `scratch` avoids allocation per call; it may
// be empty. sample_token_reference is kernels::cpu::sample, the definition written plainly, which
// the fast path is tested against.
std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec,
                          std::vector<std::uint64_t>& scratch);
std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec);
std::int32_t sample_token_reference(std::span<const float> logits, const SampleSpec& spec);
// The kernel-level parameters for `p` (what the device sampler reads).
kernels::SampleParams to_kernel_params(const SamplingParams& p);
std::int32_t argmax(std::span<const float> logits);

}  // namespace podworker::llm

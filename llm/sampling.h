// Token sampling: greedy, temperature, top-k and top-p with a counter-based random number, so a
// device can draw the same number as the CPU from (seed, step) without carrying RNG state.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

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

// Uniform in [0, 1) from (seed, step): splitmix64 of the pair, top 24 bits. Identical on any device.
float sample_uniform(std::uint64_t seed, std::uint64_t step);

// The reference sampler. Steps: greedy → argmax. Otherwise scale by 1/temperature; keep the top_k
// largest logits (ties: lower id first); softmax over them; sort by probability (descending, ties:
// lower id); keep the shortest prefix whose mass reaches top_p (at least one token); draw with
// u = sample_uniform(seed, step) by inverse CDF over that prefix, renormalised.
// `scratch` avoids allocation per call; it may be empty.
std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec,
                          std::vector<std::int32_t>& scratch);
std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec);
std::int32_t argmax(std::span<const float> logits);

}  // namespace podworker::llm

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

// Sampling semantics (both functions below implement exactly these). Greedy → argmax. Otherwise:
//  1. order the vocabulary by logit, descending, lower id first on ties; the candidates are the
//     first top_k of that order (all of it when top_k <= 0 or >= n_vocab);
//  2. p_i = expf(logit_i / temperature - max_logit / temperature) for each candidate (float);
//  3. total = Σ p_i over the candidates, summed in ascending id order, in double;
//  4. nucleus (top_p < 1): keep the shortest prefix of the order whose mass (summed in that order,
//     in double) reaches top_p * total, at least one token; kept = that mass. With top_p >= 1, or
//     when rounding never lets the mass reach the target, keep every candidate and kept = total;
//  5. u = sample_uniform(seed, step) * kept; walk the kept prefix in order accumulating p_i (double)
//     and return the first token whose running sum exceeds u (the last kept token if none does).
// sample_token only orders as much of the vocabulary as the nucleus and the draw reach (usually a
// few dozen tokens, not all 49,152). `scratch` avoids allocation per call; it may be empty.
std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec,
                          std::vector<std::int32_t>& scratch);
std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec);
// The same semantics by the direct route (sorts the whole vocabulary): the reference the fast
// path is tested against.
std::int32_t sample_token_reference(std::span<const float> logits, const SampleSpec& spec);
std::int32_t argmax(std::span<const float> logits);

}  // namespace podworker::llm

// Token sampling: argmax, temperature, top-k, top-p, with a counter-based RNG so the same
// (seed, counter) draws the same number on the CPU and on the GPU. Only token ids leave the device.
//
// Definition (the CPU reference implements exactly this, in this order):
//  1. temperature <= 0: the argmax (lowest index among equal maxima). Otherwise:
//  2. weight w_i = floor(exp((logit_i - max) / temperature) * 2^32), an integer (fixed point keeps
//     every sum exact and order-independent, so CPU and GPU agree and reruns are reproducible).
//  3. top_k in [1, vocab): keep tokens whose w_i >= the k-th largest w (ties at the boundary kept).
//  4. top_p in (0, 1): among kept tokens, keep those with w_i >= t, where t is the largest value whose
//     kept mass sum(w_j >= t) reaches ceil(top_p * total kept mass) (ties at the boundary kept).
//  5. u = uniform01(random_u64(seed, counter)) in [0, 1), r = floor(u * kept mass); the token is the
//     first index (in vocabulary order) whose running kept mass exceeds r. (A fraction of the mass rather
//     than `random mod mass`, so a last-bit difference between host and device expf moves r by a hair
//     instead of scrambling the draw.)
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/device.h"

namespace podworker::kernels {

struct SampleParams {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // <= 0 or >= vocab: off
  float top_p = 1.0f;        // >= 1: off
  std::uint32_t reserved = 0;
  std::uint64_t seed = 0;
};
static_assert(sizeof(SampleParams) == 24);

// SplitMix64-style hash of (seed, counter); the same function runs on the device.
constexpr std::uint64_t random_u64(std::uint64_t seed, std::uint64_t counter) {
  std::uint64_t z = seed + (counter + 1) * 0x9e3779b97f4a7c15ull;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// The top 53 bits of a random word as a double in [0, 1).
constexpr double uniform01(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1p-53; }

// floor(uniform01(bits) * total), kept below total.
constexpr std::uint64_t draw_below(std::uint64_t bits, std::uint64_t total) {
  const auto r = static_cast<std::uint64_t>(uniform01(bits) * static_cast<double>(total));
  return r < total ? r : total - 1;
}

namespace cpu {
// One row of `vocab` logits; counter is usually the sequence's position (unique per step).
int sample(const float* logits, int vocab, const SampleParams& params, std::uint64_t counter);
}

namespace cuda {
// logits: [batch, vocab] device; d_params: [batch] device; d_counters: [batch] device (e.g. the
// positions used by rope); d_tokens: [batch] device output. No workspace needed; one block per row.
void sample(const float* logits, int batch, int vocab, const SampleParams* d_params, const int* d_counters,
            int* d_tokens, StreamView stream);
// Greedy only (cheaper): d_tokens[b] = argmax(logits[b, :]).
void argmax(const float* logits, int batch, int vocab, int* d_tokens, StreamView stream);
}  // namespace cuda

}  // namespace podworker::kernels

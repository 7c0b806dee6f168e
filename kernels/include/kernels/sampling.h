// Token sampling: argmax, temperature, top-k, top-p, with a counter-based RNG so the same
// (seed, counter) draws the same token on the CPU and on the GPU. Only token ids leave the device.
// This is the one sampling definition of the project: llm::sample_token (the CPU decode path), the
// CPU reference kernels::cpu::sample and the device kernel kernels::cuda::sample all implement it.
//
// Definition (in this order):
//  1. temperature <= 0 (or NaN): the argmax (lowest index among equal maxima). Otherwise:
//  2. weight w_i = sample_weight(logit_i, max, temperature) = floor(exp((logit_i - max) / temperature)
//     * 2^32), an integer. exp is the integer fixed-point evaluation below (not the platform's expf),
//     so host and device compute bit-identical weights, and integer sums are exact and
//     order-independent, so CPU and GPU agree token for token and reruns are reproducible.
//  3. top_k in [1, vocab): keep tokens whose w_i >= the k-th largest w (ties at the boundary kept).
//  4. top_p < 1: among kept tokens, keep those with w_i >= t, where t is the largest value whose kept
//     mass sum(w_j >= t) reaches max(1, ceil(max(top_p, 0) * total kept mass)) (ties at the boundary
//     kept; top_p <= 0 keeps only the largest weight).
//  5. u = uniform01(random_u64(seed, counter)) in [0, 1), r = floor(u * kept mass); the token is the
//     first index (in vocabulary order) whose running kept mass exceeds r. random_u64 is
//     Philox4x32-10 (kernels/philox.h); the counter is the index of the token being generated.
//     A kept mass of zero (all logits NaN or -inf) falls back to the argmax.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/device.h"
#include "kernels/philox.h"


namespace podworker::kernels {

struct SampleParams {
  float temperature = 0.0f;  // <= 0: greedy
  int top_k = 0;             // <= 0 or >= vocab: off
  float top_p = 1.0f;        // >= 1: off; <= 0: only the most likely
  std::uint32_t reserved = 0;
  std::uint64_t seed = 0;
};
static_assert(sizeof(SampleParams) == 24);

// The sampler's random word for (seed, counter): Philox4x32-10, identical on host and device.
PODWORKER_HOST_DEVICE constexpr std::uint64_t random_u64(std::uint64_t seed, std::uint64_t counter) {
  return philox_u64(seed, counter);
}

// floor(exp((logit - max) / temperature) * 2^32) for logit <= max, temperature > 0. Only x itself
// is floating point (one correctly rounded subtraction and division); exp is evaluated in 64-bit
// integer fixed point: x in Q24 (truncated), x log2 e = n + f with n rounded, e^(f ln 2) by a
// degree-7 Taylor polynomial in Q31, then a shift by n. Integer arithmetic is exact, so the result
// is the same bit for bit on every host and device, whatever the platform's expf does, whether the
// compiler contracts multiply-adds, and whether device code is built with fast math. Relative error
// is below 2e-7 (mostly the Q24 rounding of x); no libm call, so it costs a few nanoseconds.
PODWORKER_HOST_DEVICE inline std::uint64_t sample_weight(float logit, float max, float temperature) {
#if defined(__CUDA_ARCH__)
  const float x = __fdiv_rn(__fsub_rn(logit, max), temperature);
#else
  const float x = (logit - max) / temperature;
#endif
  // Below -23 the weight is under 2^32 * e^-23 < 1, so 0; this also catches NaN and -inf.
  if (!(x > -23.0f)) return 0;
  if (!(x < 0.0f)) return std::uint64_t{1} << 32;
  constexpr std::int64_t kLog2eQ30 = 1549082005;  // log2(e) * 2^30
  constexpr std::int64_t kLn2Q31 = 1488522236;    // ln(2) * 2^31
  constexpr std::int64_t kOneQ31 = std::int64_t{1} << 31;
  // |x| < 23: x * 2^24 is exact in float and below 2^29; the product below stays under 2^60.
  const auto xq = static_cast<std::int64_t>(x * 16777216.0f);                     // Q24
  const std::int64_t t = xq * kLog2eQ30;                                          // Q54
  const std::int64_t n = (t + (std::int64_t{1} << 53)) >> 54;                     // round(x log2 e)
  const std::int64_t f = t - n * (std::int64_t{1} << 54);                         // [-0.5, 0.5) in Q54
  const std::int64_t r = ((f >> 23) * kLn2Q31) >> 31;                             // f ln 2, Q31
  // e^r = sum r^k / k!, Horner from k = 7 down; |p * r| < 2^62.
  constexpr std::int64_t kInvFactorialQ31[8] = {kOneQ31, kOneQ31, 1073741824, 357913941,
                                                89478485, 17895697, 2982616,    426088};
  std::int64_t p = kInvFactorialQ31[7];
  for (int k = 6; k >= 0; --k) p = kInvFactorialQ31[k] + ((p * r) >> 31);
  // weight = p * 2^(n + 32) / 2^31 = p shifted by n + 1 (n in [-33, 0]); the right shift floors.
  const int shift = static_cast<int>(n) + 1;
  const auto up = static_cast<std::uint64_t>(p);
  return shift >= 0 ? up << shift : up >> -shift;
}

// The top 53 bits of a random word as a double in [0, 1).
PODWORKER_HOST_DEVICE constexpr double uniform01(std::uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1p-53; }

// floor(uniform01(bits) * total), kept below total.
PODWORKER_HOST_DEVICE constexpr std::uint64_t draw_below(std::uint64_t bits, std::uint64_t total) {
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

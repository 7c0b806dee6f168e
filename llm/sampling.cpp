#include "llm/sampling.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <functional>
#include <stdexcept>

#include "kernels/sampling.h"

namespace podworker::llm {

std::int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("argmax of no logits");
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<std::int32_t>(best);
}

kernels::SampleParams to_kernel_params(const SamplingParams& p) {
  kernels::SampleParams k;
  k.temperature = p.temperature;
  k.top_k = p.top_k;
  k.top_p = p.top_p;
  k.seed = p.seed;
  return k;
}

namespace {

// The top-p threshold of the definition: the largest kept weight t with sum(kept w >= t) >= target.
// Only the weights in the highest bit-width bands that reach the target need ordering (a few dozen
// for a real model's logits, not the whole vocabulary): every weight of a wider band precedes every
// weight of a narrower one in the descending order the definition walks.
std::uint64_t nucleus_threshold(const std::vector<std::uint64_t>& w, std::uint64_t floor,
                                std::uint64_t target, std::vector<std::uint64_t>& band) {
  std::uint64_t mass[65] = {};
  for (const std::uint64_t v : w) {
    if (v >= floor) mass[std::bit_width(v)] += v;
  }
  int width = 64;
  std::uint64_t cum = 0;
  for (; width > 1; --width) {
    cum += mass[width];
    if (cum >= target) break;
  }
  band.clear();
  for (const std::uint64_t v : w) {
    if (v >= floor && static_cast<int>(std::bit_width(v)) >= width) band.push_back(v);
  }
  std::sort(band.begin(), band.end(), std::greater<>());
  std::uint64_t sum = 0;
  for (const std::uint64_t v : band) {
    sum += v;
    if (sum >= target) return v;
  }
  return floor;  // unreachable while target <= the kept mass; the definition then keeps the floor
}

}  // namespace

std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec,
                          std::vector<std::uint64_t>& w) {
  const SamplingParams& p = spec.params;
  const std::size_t n = logits.size();
  if (n == 0) throw std::invalid_argument("sampling from no logits");
  const std::int32_t best = argmax(logits);
  if (!(p.temperature > 0.0f)) return best;
  const float max = logits[static_cast<std::size_t>(best)];
  w.resize(n);
  for (std::size_t i = 0; i < n; ++i) w[i] = kernels::sample_weight(logits[i], max, p.temperature);

  thread_local std::vector<std::uint64_t> tmp;
  std::uint64_t threshold = 0;
  if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < n) {
    tmp.assign(w.begin(), w.end());
    const auto kth = tmp.begin() + (p.top_k - 1);
    std::nth_element(tmp.begin(), kth, tmp.end(), std::greater<>());
    threshold = *kth;
  }
  if (p.top_p < 1.0f) {
    std::uint64_t kept = 0;
    for (const std::uint64_t v : w) kept += v >= threshold ? v : 0;
    const auto target = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(static_cast<double>(std::max(p.top_p, 0.0f)) *
                                                static_cast<double>(kept))));
    if (kept > 0) threshold = nucleus_threshold(w, threshold, target, tmp);
  }
  std::uint64_t total = 0;
  for (const std::uint64_t v : w) total += v >= threshold ? v : 0;
  if (total == 0) return best;
  const std::uint64_t r = kernels::draw_below(kernels::random_u64(p.seed, spec.step), total);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i < n; ++i) {
    running += w[i] >= threshold ? w[i] : 0;
    if (running > r) return static_cast<std::int32_t>(i);
  }
  return best;
}

std::int32_t sample_token_reference(std::span<const float> logits, const SampleSpec& spec) {
  if (logits.empty()) throw std::invalid_argument("sampling from no logits");
  return kernels::cpu::sample(logits.data(), static_cast<int>(logits.size()),
                              to_kernel_params(spec.params), spec.step);
}

std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec) {
  std::vector<std::uint64_t> scratch;
  return sample_token(logits, spec, scratch);
}

}  // namespace podworker::llm

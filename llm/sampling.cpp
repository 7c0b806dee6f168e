#include "llm/sampling.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace podworker::llm {

namespace {

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

float sample_uniform(std::uint64_t seed, std::uint64_t step) {
  const std::uint64_t bits = splitmix64(seed ^ splitmix64(step));
  return static_cast<float>(bits >> 40) * (1.0f / 16777216.0f);
}

std::int32_t argmax(std::span<const float> logits) {
  if (logits.empty()) throw std::invalid_argument("argmax of no logits");
  std::size_t best = 0;
  for (std::size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<std::int32_t>(best);
}

std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec, std::vector<std::int32_t>& ids) {
  const SamplingParams& p = spec.params;
  if (p.greedy()) return argmax(logits);
  const std::size_t n = logits.size();
  if (n == 0) throw std::invalid_argument("sampling from no logits");

  // Candidates ordered by logit, descending, lower id first on ties; only the top k are sorted.
  ids.resize(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>(i);
  const auto before = [&](std::int32_t a, std::int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  std::size_t k = n;
  if (p.top_k > 0 && static_cast<std::size_t>(p.top_k) < n) k = static_cast<std::size_t>(p.top_k);
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k), ids.end(), before);

  // Softmax of logit/T over the k candidates, in sorted order (probabilities are non-increasing).
  const float inv_t = 1.0f / p.temperature;
  const float top = logits[ids[0]] * inv_t;
  std::vector<float> probs(k);
  double total = 0;
  for (std::size_t i = 0; i < k; ++i) {
    probs[i] = std::exp(logits[ids[i]] * inv_t - top);
    total += probs[i];
  }
  // Nucleus: the shortest prefix whose probability reaches top_p.
  std::size_t keep = k;
  if (p.top_p < 1.0f) {
    const double target = static_cast<double>(std::max(p.top_p, 0.0f)) * total;
    double mass = 0;
    for (std::size_t i = 0; i < k; ++i) {
      mass += probs[i];
      if (mass >= target) {
        keep = i + 1;
        break;
      }
    }
  }
  double kept = 0;
  for (std::size_t i = 0; i < keep; ++i) kept += probs[i];
  const double u = static_cast<double>(sample_uniform(p.seed, spec.step)) * kept;
  double cdf = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    cdf += probs[i];
    if (u < cdf) return ids[i];
  }
  return ids[keep - 1];
}

std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec) {
  std::vector<std::int32_t> scratch;
  return sample_token(logits, spec, scratch);
}

}  // namespace podworker::llm

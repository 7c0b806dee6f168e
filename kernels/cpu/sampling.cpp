// CPU reference sampling, exactly as defined in kernels/sampling.h.
#include "kernels/sampling.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <vector>

namespace podworker::kernels::cpu {

int sample(const float* logits, int vocab, const SampleParams& params, std::uint64_t counter) {
  if (vocab < 1) throw std::invalid_argument("sample: empty vocabulary");
  const int best = static_cast<int>(std::max_element(logits, logits + vocab) - logits);
  if (!(params.temperature > 0.0f)) return best;

  const float max = logits[best];
  std::vector<std::uint64_t> w(static_cast<std::size_t>(vocab));
  for (int i = 0; i < vocab; ++i) {
    w[i] = sample_weight(logits[i], max, params.temperature);
  }
  // Threshold below which tokens are dropped; 0 keeps everything.
  std::uint64_t threshold = 0;
  if (params.top_k > 0 && params.top_k < vocab) {
    std::vector<std::uint64_t> sorted = w;
    std::nth_element(sorted.begin(), sorted.begin() + (params.top_k - 1), sorted.end(), std::greater<>());
    threshold = sorted[params.top_k - 1];
  }
  if (params.top_p < 1.0f) {
    std::vector<std::uint64_t> kept;
    std::uint64_t total = 0;
    for (std::uint64_t v : w) {
      if (v >= threshold) {
        kept.push_back(v);
        total += v;
      }
    }
    const auto target = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(static_cast<double>(std::max(params.top_p, 0.0f)) * total)));
    std::sort(kept.begin(), kept.end(), std::greater<>());
    std::uint64_t mass = 0;
    for (std::size_t i = 0; i < kept.size(); ++i) {
      mass += kept[i];
      if (mass >= target) {
        threshold = kept[i];
        break;
      }
    }
  }
  std::uint64_t total = 0;
  for (std::uint64_t v : w) total += v >= threshold ? v : 0;
  if (total == 0) return best;
  const std::uint64_t r = draw_below(random_u64(params.seed, counter), total);
  std::uint64_t running = 0;
  for (int i = 0; i < vocab; ++i) {
    running += w[i] >= threshold ? w[i] : 0;
    if (running > r) return i;
  }
  return best;
}

}  // namespace podworker::kernels::cpu

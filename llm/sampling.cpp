#include "llm/sampling.h"

#include <algorithm>
#include <bit>
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

namespace {

// The candidate order: descending logit, lower id first on ties (a strict total order, so any
// partial selection agrees with the full sort on every position it fixes).
struct Before {
  const float* logits;
  bool operator()(std::int32_t a, std::int32_t b) const {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  }
};

// ids[0, sorted) is the start of the full order; ids[sorted, k) holds the remaining candidates in
// no particular order. The extend calls fix more of the order: by count (one selection and a small
// sort) or by a probability threshold (one partition and a small sort).
class OrderedPrefix {
 public:
  OrderedPrefix(std::vector<std::int32_t>& ids, std::size_t k, Before before) : ids_(ids), k_(k), before_(before) {}
  std::size_t sorted() const { return sorted_; }
  std::int32_t operator[](std::size_t i) const { return ids_[i]; }
  void extend(std::size_t m) {
    m = std::min(m, k_);
    if (m <= sorted_) return;
    if (m < k_) std::nth_element(at(sorted_), at(m), at(k_), before_);
    sort_range(sorted_, m);
    sorted_ = m;
  }
  // Every candidate with probability >= floor. Probabilities rise with logits, so those
  // candidates are a prefix of the order.
  void extend_to(const std::vector<float>& probs, float floor) {
    const auto end = std::partition(at(sorted_), at(k_), [&](std::int32_t id) { return probs[static_cast<std::size_t>(id)] >= floor; });
    const auto m = static_cast<std::size_t>(end - ids_.begin());
    sort_range(sorted_, m);
    sorted_ = m;
  }

 private:
  std::vector<std::int32_t>::iterator at(std::size_t i) { return ids_.begin() + static_cast<std::ptrdiff_t>(i); }

  // Sorts ids[a, b) in the candidate order through 64-bit keys (logit bits made to order like
  // integers, then the id), which sorts several times faster than comparing through the logits.
  void sort_range(std::size_t a, std::size_t b) {
    keys_.resize(b - a);
    for (std::size_t i = a; i < b; ++i) {
      const std::int32_t id = ids_[i];
      const float f = before_.logits[id];
      const std::uint32_t bits = std::bit_cast<std::uint32_t>(f == 0.0f ? 0.0f : f);  // -0 ties with +0
      const std::uint32_t ascending = bits & 0x80000000u ? ~bits : bits | 0x80000000u;
      keys_[i - a] = static_cast<std::uint64_t>(~ascending) << 32 | static_cast<std::uint32_t>(id);
    }
    std::sort(keys_.begin(), keys_.end());
    for (std::size_t i = a; i < b; ++i) ids_[i] = static_cast<std::int32_t>(keys_[i - a] & 0xFFFFFFFFu);
  }

  std::vector<std::int32_t>& ids_;
  std::size_t k_;
  Before before_;
  std::size_t sorted_ = 0;
  std::vector<std::uint64_t> keys_;
};

// Candidate probability mass per binary exponent (p in [2^(e-127), 2^(e-126)) for exponent e):
// from the top down, it tells roughly how many of the best candidates a given mass needs, so one
// partition usually orders exactly the prefix a walk reads.
struct MassHistogram {
  double mass[256] = {};
  static int exponent(float p) { return static_cast<int>(std::bit_cast<std::uint32_t>(p) >> 23) & 0xFF; }
  void add(float p) { mass[exponent(p)] += p; }
  // The lower bound of the lowest exponent band at which the mass from the top reaches `need`, with
  // some slack for rounding (the walk itself is exact; this only sizes the sort).
  float floor_for(double need) const {
    double cum = 0;
    for (int e = 255; e > 0; --e) {
      cum += mass[e];
      if (cum > need * (1.0 + 1e-9)) return std::bit_cast<float>(static_cast<std::uint32_t>(e) << 23);
    }
    return 0.0f;
  }
};

std::size_t candidate_count(const SamplingParams& p, std::size_t n) {
  return p.top_k > 0 && static_cast<std::size_t>(p.top_k) < n ? static_cast<std::size_t>(p.top_k) : n;
}

}  // namespace

std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec, std::vector<std::int32_t>& ids) {
  const SamplingParams& p = spec.params;
  if (p.greedy()) return argmax(logits);
  const std::size_t n = logits.size();
  if (n == 0) throw std::invalid_argument("sampling from no logits");
  const Before before{logits.data()};
  const std::size_t k = candidate_count(p, n);
  ids.resize(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>(i);
  // With a top-k cut, one selection splits the candidates from the rest; the k-th candidate then
  // decides membership by comparison.
  std::int32_t last_candidate = -1;
  if (k < n) {
    std::nth_element(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(k - 1), ids.end(), before);
    last_candidate = ids[k - 1];
  }
  OrderedPrefix order(ids, k, before);

  // Probabilities of every candidate, and their total in id order (a single pass, no sorting).
  thread_local std::vector<float> probs;
  probs.resize(n);
  const float inv_t = 1.0f / p.temperature;
  const float top = logits[static_cast<std::size_t>(argmax(logits))] * inv_t;
  double total = 0;
  MassHistogram histogram;
  for (std::size_t i = 0; i < n; ++i) {
    if (last_candidate >= 0 && before(last_candidate, static_cast<std::int32_t>(i))) continue;
    probs[i] = std::exp(logits[i] * inv_t - top);
    total += probs[i];
    histogram.add(probs[i]);
  }

  // Order only as far as the walks need, growing the sorted prefix geometrically.
  std::size_t chunk = 64;
  const auto reach = [&](std::size_t i) {
    if (i >= order.sorted()) {
      order.extend(i + chunk);
      chunk *= 2;
    }
    return order[i];
  };
  std::size_t keep = k;
  double kept = total;
  if (p.top_p < 1.0f) {
    const double target = static_cast<double>(std::max(p.top_p, 0.0f)) * total;
    order.extend_to(probs, histogram.floor_for(target));
    double mass = 0;
    for (std::size_t i = 0; i < k; ++i) {
      mass += probs[static_cast<std::size_t>(reach(i))];
      if (mass >= target) {
        keep = i + 1;
        kept = mass;
        break;
      }
    }
  }
  const double u = static_cast<double>(sample_uniform(p.seed, spec.step)) * kept;
  order.extend_to(probs, histogram.floor_for(u));
  double cdf = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    const std::int32_t id = reach(i);
    cdf += probs[static_cast<std::size_t>(id)];
    if (u < cdf) return id;
  }
  return reach(keep - 1);
}

std::int32_t sample_token_reference(std::span<const float> logits, const SampleSpec& spec) {
  const SamplingParams& p = spec.params;
  if (p.greedy()) return argmax(logits);
  const std::size_t n = logits.size();
  if (n == 0) throw std::invalid_argument("sampling from no logits");
  std::vector<std::int32_t> ids(n);
  for (std::size_t i = 0; i < n; ++i) ids[i] = static_cast<std::int32_t>(i);
  std::sort(ids.begin(), ids.end(), Before{logits.data()});
  const std::size_t k = candidate_count(p, n);
  std::vector<bool> candidate(n, false);
  for (std::size_t i = 0; i < k; ++i) candidate[static_cast<std::size_t>(ids[i])] = true;

  const float inv_t = 1.0f / p.temperature;
  const float top = logits[static_cast<std::size_t>(ids[0])] * inv_t;
  std::vector<float> probs(n, 0.0f);
  double total = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!candidate[i]) continue;
    probs[i] = std::exp(logits[i] * inv_t - top);
    total += probs[i];
  }
  std::size_t keep = k;
  double kept = total;
  if (p.top_p < 1.0f) {
    const double target = static_cast<double>(std::max(p.top_p, 0.0f)) * total;
    double mass = 0;
    for (std::size_t i = 0; i < k; ++i) {
      mass += probs[static_cast<std::size_t>(ids[i])];
      if (mass >= target) {
        keep = i + 1;
        kept = mass;
        break;
      }
    }
  }
  const double u = static_cast<double>(sample_uniform(p.seed, spec.step)) * kept;
  double cdf = 0;
  for (std::size_t i = 0; i < keep; ++i) {
    cdf += probs[static_cast<std::size_t>(ids[i])];
    if (u < cdf) return ids[i];
  }
  return ids[keep - 1];
}

std::int32_t sample_token(std::span<const float> logits, const SampleSpec& spec) {
  std::vector<std::int32_t> scratch;
  return sample_token(logits, spec, scratch);
}

}  // namespace podworker::llm

#include "llm/logprobs.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace podworker::llm {

SampledToken token_logprobs(std::span<const float> logits, std::int32_t token, int top_n) {
  if (token < 0 || static_cast<std::size_t>(token) >= logits.size()) {
    throw std::invalid_argument("token_logprobs: token " + std::to_string(token) +
                                " is outside the logits");
  }
  if (top_n < 0 || top_n > kMaxTopLogprobs)
    throw std::invalid_argument("token_logprobs: top_n out of range");
  // log_softmax(x)_i = x_i - max - log Σ exp(x_j - max); the sum in double, as 49152 terms in float
  // lose the small ones.
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - mx);
  const double log_z = static_cast<double>(mx) + std::log(sum);
  const auto lp = [&](std::int32_t i) {
    return static_cast<float>(static_cast<double>(logits[static_cast<std::size_t>(i)]) - log_z);
  };
  SampledToken out;
  out.token = token;
  out.logprob = lp(token);
  // The top_n largest by a bounded insertion: top_n <= 20, so one pass beats sorting the
  // vocabulary.
  std::vector<std::int32_t> best;
  best.reserve(static_cast<std::size_t>(top_n) + 1);
  const auto better = [&](std::int32_t a, std::int32_t b) {
    const float la = logits[static_cast<std::size_t>(a)], lb = logits[static_cast<std::size_t>(b)];
    return la > lb || (la == lb && a < b);
  };
  for (std::int32_t i = 0; top_n > 0 && i < static_cast<std::int32_t>(logits.size()); ++i) {
    if (static_cast<int>(best.size()) == top_n && !better(i, best.back())) continue;
    best.insert(std::upper_bound(best.begin(), best.end(), i, better), i);
    if (static_cast<int>(best.size()) > top_n) best.pop_back();
  }
  out.top.reserve(best.size());
  for (std::int32_t i : best) out.top.push_back({i, lp(i)});
  return out;
}

}  // namespace podworker::llm

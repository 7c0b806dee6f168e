#include "llm/perplexity.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

namespace podworker::llm {

namespace {

// -log softmax(logits)[token], in double as llama-perplexity's log_softmax sums.
double negative_log_prob(std::span<const float> logits, std::int32_t token) {
  const float mx = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - mx);
  return -(static_cast<double>(logits[static_cast<std::size_t>(token)]) - mx - std::log(sum));
}

}  // namespace

PerplexityResult perplexity(Backend& backend, std::span<const std::int32_t> tokens,
                            const PerplexityOptions& options, const PerplexityProgress& progress) {
  const int ctx = options.ctx;
  if (ctx < 4) throw std::invalid_argument("perplexity: the context must be at least 4 tokens");
  if (ctx > backend.max_context()) {
    throw std::invalid_argument("perplexity: a window of " + std::to_string(ctx) +
                                " tokens exceeds the backend's context of " +
                                std::to_string(backend.max_context()));
  }
  if (tokens.size() < 2 * static_cast<std::size_t>(ctx)) {
    throw std::invalid_argument("perplexity: the text has " + std::to_string(tokens.size()) +
                                " tokens; at least " + std::to_string(2 * ctx) +
                                " (2 x ctx) are needed");
  }
  const int windows = static_cast<int>(tokens.size() / static_cast<std::size_t>(ctx));
  const int first = ctx / 2;
  const int parallel = std::clamp(options.parallel, 1, backend.max_sequences());
  // (Summing window by window in text order also makes the total independent of `parallel`.)
  const auto vocab = static_cast<std::size_t>(backend.config().n_vocab);

  PerplexityResult r;
  double nll2 = 0;  // sum of squares, for the standard error
  std::vector<float> logits;
  std::vector<DecodeStep> steps;
  std::vector<std::vector<std::int32_t>> window_tokens;
  std::vector<double> window_nll;
  for (int w0 = 0; w0 < windows; w0 += parallel) {
    const int n = std::min(parallel, windows - w0);
    std::vector<SeqId> seqs;
    window_tokens.assign(static_cast<std::size_t>(n), {});
    window_nll.assign(static_cast<std::size_t>(n), 0.0);
    try {
      for (int k = 0; k < n; ++k) {
        const auto start = static_cast<std::size_t>(w0 + k) * static_cast<std::size_t>(ctx);
        auto& wt = window_tokens[static_cast<std::size_t>(k)];
        wt.assign(
            tokens.begin() + static_cast<std::ptrdiff_t>(start),
            tokens.begin() + static_cast<std::ptrdiff_t>(start + static_cast<std::size_t>(ctx)));
        if (options.bos) wt[0] = *options.bos;
        const SeqId s = backend.alloc_sequence();
        if (s < 0) throw std::runtime_error("perplexity: the backend has no free sequence");
        seqs.push_back(s);
        // The unscored first half in one pass; its logits are not needed.
        backend.prefill(s, std::span(wt).first(static_cast<std::size_t>(first)), {});
      }
      // Then one position at a time for every window of the group together: positions first ..
      // ctx-2, each scored against the next token.
      steps.resize(static_cast<std::size_t>(n));
      logits.resize(static_cast<std::size_t>(n) * vocab);
      for (int p = first; p <= ctx - 2; ++p) {
        for (int k = 0; k < n; ++k) {
          steps[static_cast<std::size_t>(k)] = {
              seqs[static_cast<std::size_t>(k)],
              window_tokens[static_cast<std::size_t>(k)][static_cast<std::size_t>(p)]};
        }
        backend.decode(steps, logits);
        for (int k = 0; k < n; ++k) {
          const double v = negative_log_prob(
              std::span<const float>(logits).subspan(static_cast<std::size_t>(k) * vocab, vocab),
              window_tokens[static_cast<std::size_t>(k)][static_cast<std::size_t>(p + 1)]);
          window_nll[static_cast<std::size_t>(k)] += v;
          nll2 += v * v;
        }
      }
    } catch (...) {
      for (SeqId s : seqs) backend.free_sequence(s);
      throw;
    }
    for (SeqId s : seqs) backend.free_sequence(s);
    // Windows are added in text order, so the running figure is the one a window-at-a-time run
    // shows.
    for (int k = 0; k < n; ++k) {
      ++r.windows;
      r.nll += window_nll[static_cast<std::size_t>(k)];
      r.scored += ctx - 1 - first;
      if (progress) progress(r.windows, std::exp(r.nll / r.scored));
    }
  }
  r.perplexity = std::exp(r.nll / r.scored);
  // llama-perplexity's estimate: the standard error of the mean NLL, carried through exp.
  const double mean = r.nll / r.scored;
  const double var = nll2 / r.scored - mean * mean;
  r.uncertainty = r.scored > 1 ? r.perplexity * std::sqrt(std::max(0.0, var) / (r.scored - 1)) : 0;
  return r;
}

}  // namespace podworker::llm

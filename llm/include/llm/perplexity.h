// Perplexity of a model on a text, scored the way llama.cpp's llama-perplexity scores it, so the
// two tools' numbers compare directly.
//
// The tokens are cut into windows ("chunks") of `ctx` consecutive tokens, each evaluated from an
// empty cache; a tail shorter than ctx is dropped. Within a window only the second half counts:
// with first = ctx / 2, the logits at window positions first .. ctx-2 are scored against the
// tokens at positions first+1 .. ctx-1 (ctx - 1 - first predictions per window), so every scored
// token has at least ctx/2 tokens of context. perplexity = exp(mean of -log p(token)), the mean
// over all scored tokens of all windows; log p is log-softmax of the raw logits in double. When the
// model's tokenizer adds a BOS token, the first token of every window is replaced by BOS (as
// llama-perplexity does); SmolLM2's does not.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>

#include "llm/backend.h"

namespace podworker::llm {

struct PerplexityOptions {
  int ctx = 512;
  int parallel = 8;                 // windows evaluated together (distinct sequences of one batch)
  std::optional<std::int32_t> bos;  // replace each window's first token with this one
};

struct PerplexityResult {
  double perplexity = 0;
  double nll = 0;          // sum of -log p over the scored tokens
  double uncertainty = 0;  // standard error of the perplexity, as llama-perplexity's "+/-"
  int windows = 0;
  int scored = 0;  // predictions counted
};

// Called after each window with its number (1-based) and the perplexity over the windows so far.
using PerplexityProgress = std::function<void(int window, double perplexity)>;

// Throws std::invalid_argument when ctx < 4, the backend holds fewer than ctx tokens, or the text
// has fewer than 2 * ctx tokens (llama-perplexity's requirement).
PerplexityResult perplexity(Backend& backend, std::span<const std::int32_t> tokens,
                            const PerplexityOptions& options,
                            const PerplexityProgress& progress = {});

}  // namespace podworker::llm

// Log-probabilities of generated tokens, as OpenAI's logprobs report them.
//
// The distribution is the model's own: log-softmax of the raw logits, before temperature, top-k and
// top-p (what vLLM reports by default), so a token's logprob does not depend on how it was drawn
// and the top-1 alternative is the greedy token.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace podworker::llm {

inline constexpr int kMaxTopLogprobs = 20;  // OpenAI's bound for top_logprobs

struct TokenLogprob {
  std::int32_t token = 0;
  float logprob = 0;
};

// A generated token; logprob and top are set only when the request asked for logprobs.
struct SampledToken {
  std::int32_t token = 0;
  float logprob = 0;
  std::vector<TokenLogprob>
      top;  // the `top_n` most likely tokens, most likely first (ties: lower id)
};

// `token` with its logprob under log_softmax(logits) and the top_n (0..kMaxTopLogprobs) most
// likely tokens. Throws std::invalid_argument for a token outside the logits or top_n out of range.
SampledToken token_logprobs(std::span<const float> logits, std::int32_t token, int top_n);

}  // namespace podworker::llm

// Continuous batching over one Backend: requests join and leave the running batch between steps.
//
// One scheduler thread owns the backend. Each iteration it admits waiting requests (prefilling
// their prompts in chunks, so a long prompt does not stall running streams for long), then runs ONE
// decode_sample() over every running sequence. Tokens travel to the requesting thread through a
// per-request queue, so a slow consumer (a network post) never stalls the batch; a sequence whose
// queue holds max_queued_tokens undelivered tokens sits out the decode steps until its consumer
// catches up, so a stalled consumer costs no compute beyond that bound.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "llm/backend.h"
#include "llm/logprobs.h"
#include "llm/sampling.h"

namespace podworker::llm {

enum class FinishReason { stop, length, cancelled, error };
std::string_view finish_reason_name(FinishReason reason);  // "stop", "length", "cancelled", "error"

struct GenerationRequest {
  std::vector<std::int32_t> prompt;  // non-empty, fits the backend's max_context()
  SamplingParams sampling;
  int max_tokens = 256;  // generation also ends when the sequence reaches max_context()
  // -1: no logprobs. 0..kMaxTopLogprobs: each SampledToken carries its logprob and this many of the
  // most likely tokens (llm/logprobs.h says of which distribution).
  int top_logprobs = -1;
};

struct GenerationStats {
  int input_tokens = 0;
  int output_tokens = 0;
  double time_to_first_token_ms = 0;
  double total_ms = 0;
  double tokens_per_second = 0;  // output tokens after the first, per second of decoding
  FinishReason finish_reason = FinishReason::stop;
  std::string error;  // set when finish_reason is error
  int peak_queued_tokens = 0;  // most tokens ever waiting for the consumer (<= max_queued_tokens)
};

struct EngineOptions {
  std::vector<std::int32_t> end_tokens;  // end the generation (not passed to the callback)
  int prefill_chunk = 256;               // prompt tokens prefilled per scheduler iteration
  int max_queued_tokens = 64;            // undelivered tokens per request before it pauses; 0: no bound
};

class Engine {
 public:
  explicit Engine(std::unique_ptr<Backend> backend, EngineOptions options = {});
  ~Engine();  // stops the scheduler; running generate() calls end with finish_reason error
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Generates for one request; blocks until it ends. `on_token` runs on the CALLING thread once per
  // generated token, in order; returning false ends the generation (finish_reason stop). A stop
  // request ends it at the next token (finish_reason cancelled). Throws std::invalid_argument for
  // an empty prompt, one longer than max_context(), or max_tokens < 1. Thread-safe.
  GenerationStats generate(const GenerationRequest& request,
                           const std::function<bool(std::int32_t token)>& on_token,
                           std::stop_token stop = {});
  // The same, the callback seeing each token with its logprobs (empty unless top_logprobs >= 0).
  GenerationStats generate_tokens(const GenerationRequest& request,
                                  const std::function<bool(const SampledToken& token)>& on_token,
                                  std::stop_token stop = {});

  const Backend& backend() const { return *backend_; }
  const LlamaConfig& config() const { return backend_->config(); }
  int max_context() const { return backend_->max_context(); }

 private:
  struct Active;
  void run(std::stop_token stop);

  std::unique_ptr<Backend> backend_;
  EngineOptions options_;
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::deque<std::shared_ptr<Active>> waiting_;
  std::uint64_t resumed_ = 0;  // under mutex_: bumped when a consumer drains a paused request's queue
  std::jthread scheduler_;  // last: starts after, and stops before, the members it uses
};

}  // namespace podworker::llm

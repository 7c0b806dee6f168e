#include "textgen_metrics.h"

namespace podworker::handlers::textgen {

namespace {

constexpr double kFirstTokenBuckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                         0.5,   1,    2.5,   5,    10,  30};
constexpr double kRateBuckets[] = {1, 5, 10, 25, 50, 100, 200, 400, 800, 1600, 3200};

}  // namespace

TextgenMetrics& textgen_metrics() {
  metrics::Registry& r = metrics::process_registry();
  static TextgenMetrics m{
      r.histogram("podworker_textgen_time_to_first_token_seconds",
                  "From a generation's start (prompt queued) to its first generated token.",
                  kFirstTokenBuckets),
      r.histogram("podworker_textgen_tokens_per_second",
                  "Decode rate of each generation: output tokens after the first, per second.",
                  kRateBuckets),
      r.counter("podworker_textgen_generated_tokens_total", "Tokens generated."),
      r.counter("podworker_textgen_prompt_tokens_total", "Prompt tokens prefilled."),
      r.gauge("podworker_textgen_batch_sequences",
              "Generations running in the engine's batch now."),
      r.gauge("podworker_textgen_batch_capacity_sequences",
              "Generations the engine batches at most (PODWORKER_MAX_SEQUENCES)."),
      r.gauge("podworker_textgen_kv_cache_tokens",
              "KV cache positions the running generations hold."),
      r.gauge("podworker_textgen_kv_cache_capacity_tokens",
              "KV cache positions of the batch: capacity sequences times the context."),
  };
  return m;
}

SequenceUse::SequenceUse(int prompt_tokens) : metrics_(textgen_metrics()), prompt_(prompt_tokens) {
  metrics_.sequences.add(1);
  held_ = prompt_tokens;
  metrics_.kv_tokens.add(held_);
}

void SequenceUse::generated(int output_tokens) {
  const double now_held = prompt_ + output_tokens;
  if (now_held <= held_) return;
  metrics_.kv_tokens.add(now_held - held_);
  held_ = now_held;
}

SequenceUse::~SequenceUse() {
  metrics_.kv_tokens.add(-held_);
  metrics_.sequences.add(-1);
}

}  // namespace podworker::handlers::textgen

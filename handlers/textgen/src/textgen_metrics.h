// textgen's Prometheus families, in the process registry (served by the worker's /metrics):
// time to first token, decode rate, tokens, and how full the engine's batch and KV cache are.
// The handler sees every sequence begin and end, so it keeps the occupancy gauges itself.
#pragma once

#include "podworker/metrics.h"

namespace podworker::handlers::textgen {

struct TextgenMetrics {
  metrics::Histogram& time_to_first_token;
  metrics::Histogram& tokens_per_second;
  metrics::Counter& generated_tokens;
  metrics::Counter& prompt_tokens;
  metrics::Gauge& sequences;
  metrics::Gauge& sequences_capacity;
  metrics::Gauge& kv_tokens;
  metrics::Gauge& kv_capacity;
};

TextgenMetrics& textgen_metrics();

// One generation's share of the batch and of the KV cache while it runs: its prompt from the start,
// each generated token as it comes; all of it returned when it ends.
class SequenceUse {
 public:
  explicit SequenceUse(int prompt_tokens);
  ~SequenceUse();
  SequenceUse(const SequenceUse&) = delete;
  SequenceUse& operator=(const SequenceUse&) = delete;
  // `output_tokens` generated so far.
  void generated(int output_tokens);

 private:
  TextgenMetrics& metrics_;
  double held_ = 0;  // KV positions this sequence counts in the gauge
  int prompt_ = 0;
};

}  // namespace podworker::handlers::textgen

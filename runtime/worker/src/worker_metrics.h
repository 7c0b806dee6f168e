// The worker's Prometheus families, in the process registry (metrics::process_registry()): served
// by `worker --metrics-port` and, under --serve-api, on the embedded endpoint's /metrics. One set
// per process: several Worker objects in one process (tests) add to the same counters.
#pragma once

#include <array>
#include <cstdint>

#include "podworker/metrics.h"

namespace podworker::worker {

enum class PostKind : std::uint8_t { result, stream, progress, error };

struct WorkerMetrics {
  metrics::Counter& jobs_completed;
  metrics::Counter& jobs_failed;
  metrics::Counter& jobs_stopped;
  metrics::Histogram& job_seconds;
  metrics::Histogram& take_seconds;
  std::array<metrics::Counter*, 4> posts;    // by PostKind
  std::array<metrics::Counter*, 4> retries;  // by PostKind
  metrics::Counter& stream_bytes;
  metrics::Histogram& chunks_per_post;
  metrics::Counter& heartbeat_failures;
  metrics::Gauge& jobs_running;
  metrics::Gauge& concurrency;

  metrics::Counter& post(PostKind kind) { return *posts[static_cast<std::size_t>(kind)]; }
  metrics::Counter& retry(PostKind kind) { return *retries[static_cast<std::size_t>(kind)]; }
};

// Registered on first use.
WorkerMetrics& worker_metrics();

}  // namespace podworker::worker

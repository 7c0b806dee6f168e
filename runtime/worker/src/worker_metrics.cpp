#include "worker_metrics.h"

#include <string>

namespace podworker::worker {

namespace {

constexpr double kChunkBuckets[] = {1, 2, 4, 8, 16, 32, 64, 128, 256};
constexpr const char* kKinds[] = {"result", "stream", "progress", "error"};

WorkerMetrics make() {
  metrics::Registry& r = metrics::process_registry();
  constexpr std::string_view jobs_help =
      "Jobs this worker ran, by outcome (stopped: cancelled or timed out, nothing posted).";
  WorkerMetrics m{
      r.counter("podworker_worker_jobs_total", jobs_help, {{"outcome", "completed"}}),
      r.counter("podworker_worker_jobs_total", jobs_help, {{"outcome", "failed"}}),
      r.counter("podworker_worker_jobs_total", jobs_help, {{"outcome", "stopped"}}),
      r.histogram("podworker_worker_job_duration_seconds",
                  "From a job's start to its result delivered.", metrics::kJobBuckets),
      r.histogram(
          "podworker_worker_take_seconds",
          "Duration of job-take requests that brought jobs (includes the long poll's wait).",
          metrics::kJobBuckets),
      {},
      {},
      r.counter("podworker_worker_stream_bytes_total", "Bytes of stream chunk posts delivered."),
      r.histogram("podworker_worker_stream_chunks_per_post",
                  "Chunks a handler yielded per stream post (merged while a post was in flight).",
                  kChunkBuckets),
      r.counter("podworker_worker_heartbeat_failures_total",
                "Pings that failed (no answer, or not 2xx)."),
      r.gauge("podworker_worker_jobs_running",
              "Jobs taken and not yet reported: handler concurrency in use."),
      r.gauge("podworker_worker_concurrency",
              "Jobs this worker runs at once at most (--concurrency)."),
  };
  for (std::size_t i = 0; i < std::size(kKinds); ++i) {
    m.posts[i] = &r.counter("podworker_worker_posts_total",
                            "Posts delivered to the endpoint, by kind.", {{"kind", kKinds[i]}});
    m.retries[i] = &r.counter("podworker_worker_post_retries_total",
                              "Posts sent again after a connection error, 5xx or 429, by kind.",
                              {{"kind", kKinds[i]}});
  }
  return m;
}

}  // namespace

WorkerMetrics& worker_metrics() {
  static WorkerMetrics metrics = make();
  return metrics;
}

}  // namespace podworker::worker

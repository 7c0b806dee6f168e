// Runs one job through a handler: the Job and Emitter the handler sees (stream and progress
// senders), and the final result body in the protocol's shape.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <optional>
#include <stop_token>
#include <string>

#include "job_sink.h"
#include "podworker/handler.h"

namespace podworker::worker {

class DeadlineWatch;

// A running job's stop: the first reason given wins (a cancel that arrives after the deadline
// fired does not turn the timeout into a cancel).
class JobControl {
 public:
  void stop(StopReason why) {
    StopReason expected = StopReason::none;
    reason_.compare_exchange_strong(expected, why);
    source_.request_stop();
  }
  std::stop_token token() const { return source_.get_token(); }
  StopReason reason() const { return reason_.load(); }

 private:
  std::stop_source source_;
  std::atomic<StopReason> reason_{StopReason::none};
};

struct JobRunConfig {
  std::size_t max_post_bytes = 1024 * 1024;
  std::size_t stream_buffer_bytes = 4 * 1024 * 1024;  // see StreamSenderConfig
  bool aggregate_stream = false;
  // A stream without a summary reports its chunks (local runs: print what the handler produced).
  bool aggregate_without_summary = false;
  std::string hostname = "unknown";
  std::string worker_id;
  // A job without its own policy.executionTimeout is stopped (timed out) after this long.
  std::optional<std::chrono::milliseconds> job_timeout;
  // The worker's one deadline thread (deadline_watch.h); null: run_job makes one for the job.
  DeadlineWatch* deadlines = nullptr;
};

struct JobOutcome {
  std::string body;      // the result to POST to job-done (empty when stopped)
  bool is_stream = false;
  bool ok = false;       // false: the body carries "error"
  bool stopped = false;  // cancelled or shut down: post nothing
  bool timed_out = false;  // past its deadline: post `body` (the timeout error) even though stopped
};

// {"error": message}
std::string error_result_body(std::string_view message);

// `job`: the job object as taken (has "id" and "input"). `control`: this job's stop, which
// run_job itself requests (timed_out) once the job's deadline passes.
JobOutcome run_job(Handler& handler, const json::Value& job, JobSink& sink, JobControl& control,
                   const JobRunConfig& config);

}  // namespace podworker::worker

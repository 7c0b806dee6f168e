// Runs one job through a handler: the Job and Emitter the handler sees, stream splitting and
// coalescing, progress, and the final result body in the protocol's shape.
#pragma once

#include <chrono>
#include <cstddef>
#include <stop_token>
#include <string>

#include "podworker/handler.h"

namespace podworker::worker {

// Where a job's intermediate posts go (HTTP for a real worker, nowhere for a local test run).
// Calls for one job never overlap.
class JobSink {
 public:
  virtual ~JobSink() = default;
  // Posts one stream body; returns an empty string on success, else why it could not be delivered.
  virtual std::string post_stream(const std::string& body) = 0;
  // Posts one progress body; best effort (a lost progress update loses nothing).
  virtual void post_progress(const std::string& body) = 0;
};

struct JobRunConfig {
  std::size_t max_post_bytes = 1024 * 1024;
  std::chrono::milliseconds stream_coalesce{0};
  bool aggregate_stream = false;
  std::string hostname = "unknown";
  std::string worker_id;
};

struct JobOutcome {
  std::string body;      // the result to POST to job-done (empty when stopped)
  bool is_stream = false;
  bool ok = false;       // false: the body carries "error"
  bool stopped = false;  // cancelled: post nothing
};

// {"error": message}
std::string error_result_body(std::string_view message);

// `job`: the job object as taken (has "id" and "input"). `stop`: cancellation of this job.
JobOutcome run_job(Handler& handler, const json::Value& job, JobSink& sink, std::stop_token stop,
                   const JobRunConfig& config);

}  // namespace podworker::worker

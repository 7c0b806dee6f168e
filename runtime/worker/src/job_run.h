// Runs one job through a handler: the Job and Emitter the handler sees (stream and progress
// senders), and the final result body in the protocol's shape.
#pragma once

#include <cstddef>
#include <stop_token>
#include <string>

#include "job_sink.h"
#include "podworker/handler.h"

namespace podworker::worker {

struct JobRunConfig {
  std::size_t max_post_bytes = 1024 * 1024;
  std::size_t stream_buffer_bytes = 4 * 1024 * 1024;  // see StreamSenderConfig
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

// Job vocabulary shared by the store and the HTTP layer: states, what a client submits, what a
// worker posts back, and the parsing of both from untrusted JSON.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podworker::endpoint {

enum class JobStatus : std::uint8_t { in_queue, in_progress, completed, failed, cancelled, timed_out };

std::string_view status_name(JobStatus status);
inline bool is_terminal(JobStatus s) { return s != JobStatus::in_queue && s != JobStatus::in_progress; }

struct Policy {
  std::chrono::milliseconds execution_timeout{600'000};
  std::chrono::milliseconds ttl{24 * 3'600'000LL};
  bool low_priority = false;
};

// A job as a client submits it; the JSON members are kept as compact JSON text.
struct NewJob {
  std::string id;
  std::string input_json;
  std::string webhook;         // empty: none
  std::string s3_config_json;  // empty: none
  Policy policy;
  bool sync = false;  // submitted by /runsync: shorter retention
};

// What a queued job holds against the queue cap: its input, webhook and s3Config as stored.
std::size_t queued_payload_bytes(const NewJob& job);

// Limits applied when reading a submission's `policy`.
struct PolicyLimits {
  std::chrono::milliseconds execution_timeout_default, execution_timeout_min, execution_timeout_max;
  std::chrono::milliseconds ttl_default, ttl_min, ttl_max;
};

// Parses a /run or /runsync body into `job` (id and sync left as they are). Throws JsonError with a
// message for the client when the body is not an object, `input` is missing or not an object,
// `webhook` is not an http(s) URL, or `policy` has the wrong types.
void parse_submission(std::string_view body, const PolicyLimits& limits, NewJob& job);

// What a worker posts to job-done.
struct WorkerResult {
  enum class Kind : std::uint8_t { output, error, progress } kind = Kind::output;
  std::string output_json;  // empty: no output
  std::string error;        // the error text, for Kind::error
};

// Parses a job-done body: {"output": v}, {"error": e, "output"?: v}, or
// {"status": "IN_PROGRESS", "output": p} (a progress update). Throws JsonError when malformed.
WorkerResult parse_worker_result(std::string_view body);

// A job as the store reports it; the HTTP layer renders it.
struct JobRecord {
  std::string id;
  JobStatus status = JobStatus::in_queue;
  std::optional<std::int64_t> delay_ms;      // once a worker took it: ms it was queued
  std::optional<std::int64_t> execution_ms;  // once it ended after running: ms it ran
  std::string output_json;                   // the progress while IN_PROGRESS, else the output; empty: none
  std::optional<std::string> error;
  std::string worker;  // the worker holding (or that ran) it; empty: none
};

// The /status body, also what /runsync answers with and a webhook receives:
// {delayTime, executionTime, error, id, output, status, workerId}, members present when known.
std::string render_status(const JobRecord& job);

// What a worker receives from job-take, and the lease it holds on the job from then on.
struct TakenJob {
  std::string id;
  std::uint64_t lease = 0;
  std::string input_json;
  std::string s3_config_json;  // empty: none
  std::string webhook;         // empty: none
  Policy policy;               // as the endpoint applies it (defaults and clamping done)
  int retries = 0;             // runs lost with their worker before this one (health's `retried`)
};

// The job object of a job-take answer: {"id", "input", "s3Config"?, "webhook"?, "policy",
// "retries"}. The policy is the submission's, with the endpoint's defaults and limits applied: a
// worker stops the job at its executionTimeout (Job::deadline()) before the endpoint times it out,
// and reads `retries` as Job::retry_count().
std::string render_taken(const TakenJob& job);

// Parses a job-stream body {"output": chunk}; returns the chunk as JSON text (the whole body when it
// has no `output`). Throws JsonError when malformed.
std::string parse_stream_chunk(std::string_view body);

}  // namespace podworker::endpoint

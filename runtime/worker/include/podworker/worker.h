// The podworker worker runtime: pulls jobs from a RunPod-style queue, runs a registered handler on
// them and reports results, stream chunks, progress and heartbeats, speaking RunPod's worker
// protocol (flags, environment and behaviour: runtime/worker/README.md).
//
// An out-of-tree worker's main() is two lines:
//   podworker::HandlerRegistry::global().add<MyHandler>("mine");
//   return podworker::worker_main(argc, argv);
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "podworker/handler.h"

namespace podworker {

// The runpod-python release whose worker protocol podworker speaks; sent as `runpod_version` in
// heartbeats and error reports so the platform treats us like that SDK.
inline constexpr const char* kRunpodProtocolVersion = "1.12.0";

// Everything the worker needs. Defaults are production values; tests shorten the timings.
struct WorkerOptions {
  std::string handler = "echo";
  std::string worker_id;  // RUNPOD_POD_ID; random when empty
  std::string hostname;   // RUNPOD_POD_HOSTNAME; "unknown" when empty
  std::string api_key;    // RUNPOD_AI_API_KEY: the raw Authorization header value

  // URL templates exactly as RUNPOD_WEBHOOK_* hold them ($ID, $RUNPOD_POD_ID unsubstituted).
  std::string take_url;    // RUNPOD_WEBHOOK_GET_JOB
  std::string done_url;    // RUNPOD_WEBHOOK_POST_OUTPUT
  std::string stream_url;  // RUNPOD_WEBHOOK_POST_STREAM
  std::string ping_url;    // RUNPOD_WEBHOOK_PING; empty = no heartbeat
  std::chrono::milliseconds ping_interval{10000};  // RUNPOD_PING_INTERVAL

  int concurrency = 1;                 // jobs at once; Handler::concurrency() may adjust per take
  bool return_aggregate_stream = false;  // the final result of a stream holds all its chunks

  // Streaming: no post body exceeds max_post_bytes. Chunks yielded while a post is in flight
  // go out merged in the next one; once stream_buffer_bytes of a job's chunks wait undelivered,
  // its handler's yield() waits.
  std::size_t max_post_bytes = 1024 * 1024;
  std::size_t stream_buffer_bytes = 4 * 1024 * 1024;

  // HTTP timings.
  std::chrono::milliseconds connect_timeout{10000};
  std::chrono::milliseconds request_timeout{30000};  // posts and pings
  std::chrono::milliseconds long_poll_timeout{90000};  // job-take and job-stop (server holds them)
  int post_attempts = 5;  // per result/chunk post, on connection errors, 5xx and 429
  std::chrono::milliseconds backoff_initial{200};
  std::chrono::milliseconds backoff_max{10000};
  std::chrono::milliseconds rate_limited_backoff{5000};  // job-take answered 429
  // A job-take answered "no job" faster than this waits out the rest before asking again, so a
  // server that does not long-poll is not hammered. Our endpoint long-polls, so this never waits.
  std::chrono::milliseconds min_poll_interval{100};

  // SIGTERM: running jobs get this long to finish, then they are cancelled.
  std::chrono::milliseconds shutdown_grace{30000};

  // Local modes.
  std::optional<std::string> test_input;  // --test-input JSON (or ./test_input.json)
  bool serve_api = false;                 // --serve-api: embed the local endpoint
  std::string api_host = "127.0.0.1";
  int api_port = 8000;
  std::vector<std::string> api_args;  // flags after "--": passed to the endpoint's own parser
  // --metrics-port: Prometheus /metrics of this process on its own port (0 = any free port);
  // -1 = off. Under --serve-api the endpoint's /metrics shows them too.
  int metrics_port = -1;
  std::string metrics_host = "127.0.0.1";
  // init() has already run (--serve-api initializes the handler first, to give the endpoint the
  // handler's chat limits): Worker::run() then does not call it again.
  bool handler_initialized = false;
};

// Reads the RUNPOD_* variables, and the PODWORKER_* overrides listed in runtime/worker/README.md,
// into options.
WorkerOptions options_from_env();

// Applies command-line flags over `options`. Throws std::invalid_argument on a bad flag.
void apply_flags(WorkerOptions& options, const std::vector<std::string>& args);

// Substitutes a URL template: $RUNPOD_POD_ID → worker id, then $ID → id.
std::string substitute_url(std::string url_template, const std::string& worker_id,
                           const std::string& id);
// Appends `param` (k=v) with '&', or '?' when the URL has no query yet.
std::string append_query(std::string url, std::string_view param);

// One worker process's job loop. run() blocks until stop() (or a SIGTERM through worker_main)
// and every job taken has ended.
class Worker {
 public:
  Worker(WorkerOptions options, Handler& handler);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Calls handler.init() (unless options.handler_initialized), takes and runs jobs until stop(),
  // then handler.finalize().
  void run();
  // Thread-safe, idempotent: stop taking jobs; running jobs get shutdown_grace to finish (their
  // results are posted), then are cancelled (nothing posted; the endpoint requeues them).
  void stop();

  const std::string& worker_id() const;
  // Jobs currently held (taken and not yet reported).
  std::vector<std::string> held_jobs() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Result of one job run locally (--test-input): {"output": ...} or {"error": ...}.
struct LocalResult {
  json::Document body;
  bool ok = false;
};
// Runs `job` (a JSON object with "input"; id "local_test" unless it has one) through `handler`
// without any server; streamed chunks are aggregated into the output.
LocalResult run_local_job(Handler& handler, const json::Value& job, const WorkerOptions& options);

// The worker executable: parses flags and environment, picks the handler from `registry`, and
// runs the job loop, a local test job, or the embedded endpoint with the loop pulling from it.
// Returns the process exit code.
int worker_main(int argc, char** argv, HandlerRegistry& registry = HandlerRegistry::global());

}  // namespace podworker

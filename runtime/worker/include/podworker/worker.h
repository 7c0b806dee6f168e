// The podworker worker runtime: pulls jobs from a RunPod-style queue, runs a registered handler on
// them and reports results, stream chunks, progress and heartbeats, speaking RunPod's worker
// protocol (flags and environment: `worker --help`; behaviour: runtime/worker/README.md in
// podworker's source tree).
//
// An out-of-tree worker's main() is two lines:
//   podworker::HandlerRegistry::global().add<MyHandler>("mine");
//   return podworker::worker_main(argc, argv, {.default_handler = "mine"});
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "podworker/handler.h"

namespace podworker {

// The runpod-python release whose worker protocol podworker speaks; sent as `runpod_version` in
// heartbeats and error reports so the platform treats us like that SDK.
inline constexpr const char* kRunpodProtocolVersion = "1.12.0";

// Everything the worker needs. Defaults are production values; tests shorten the timings.
struct WorkerOptions {
  std::string handler;    // --handler / PODWORKER_HANDLER; empty: the default (select_handler)
  std::string worker_id;  // RUNPOD_POD_ID; random when empty
  std::string hostname;   // RUNPOD_POD_HOSTNAME; "unknown" when empty
  std::string api_key;    // RUNPOD_AI_API_KEY: the raw Authorization header value

  // URL templates exactly as RUNPOD_WEBHOOK_* hold them ($ID, $RUNPOD_POD_ID unsubstituted).
  std::string take_url;    // RUNPOD_WEBHOOK_GET_JOB
  std::string done_url;    // RUNPOD_WEBHOOK_POST_OUTPUT
  std::string stream_url;  // RUNPOD_WEBHOOK_POST_STREAM
  std::string ping_url;    // RUNPOD_WEBHOOK_PING; empty = no heartbeat
  std::chrono::milliseconds ping_interval{10000};  // RUNPOD_PING_INTERVAL

  // Jobs at once; unset: the handler's capacity(). Handler::concurrency() may adjust per take.
  std::optional<int> concurrency;
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
  // A job without its own policy.executionTimeout is stopped and failed after this long.
  std::optional<std::chrono::milliseconds> job_timeout;

  // The handler's settings: --set NAME=VALUE (in order; the last wins) and --config FILE
  // (PODWORKER_CONFIG). Resolved by make_handler_context().
  std::vector<std::pair<std::string, std::string>> setting_flags;
  std::string config_file;

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

// Reads the RUNPOD_* variables, and the PODWORKER_* overrides `worker --help` lists, into options.
WorkerOptions options_from_env();

// Applies command-line flags over `options`. Throws std::invalid_argument on a bad flag.
void apply_flags(WorkerOptions& options, const std::vector<std::string>& args);

// Resolves `declared` settings of the handler `handler_name`. Precedence, highest first:
// `flags` (--set NAME=VALUE), PODWORKER_<HANDLER>_<NAME>, the setting's env_aliases, the JSON
// object in `config_file` (empty: none), the default. Throws std::invalid_argument naming the
// setting and the source of a value that does not parse, an undeclared name, or an unreadable file.
Settings resolve_settings(const std::string& handler_name, const std::vector<Setting>& declared,
                          const std::vector<std::pair<std::string, std::string>>& flags,
                          const std::string& config_file);
// PODWORKER_<HANDLER>_<NAME>, upper-cased, other characters as '_'.
std::string setting_env_name(std::string_view handler_name, std::string_view setting_name);
// The context init() gets: resolved settings, worker id, devices, logger (throws like
// resolve_settings).
HandlerContext make_handler_context(const WorkerOptions& options, const Handler& handler);

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
// Runs `job` (a JSON object with an object "input", as the endpoint requires; id "local_test"
// unless it has one) through `handler` without any server; streamed chunks are aggregated into
// the output.
LocalResult run_local_job(Handler& handler, const json::Value& job, const WorkerOptions& options);

// Which registered handler runs: `requested` (--handler / PODWORKER_HANDLER) when given, else
// `default_handler`, else the only one registered. Throws std::invalid_argument saying what is
// registered when none of these names a registered handler.
std::string select_handler(const std::string& requested, const std::string& default_handler,
                           const HandlerRegistry& registry);

struct WorkerMainOptions {
  // The handler run when --handler and PODWORKER_HANDLER are unset; empty: the only registered
  // handler (a binary with several must then be told which).
  // (Default member initializers throughout: `{.default_handler = "mine"}` compiles warning-free.)
  std::string default_handler = {};
  HandlerRegistry* registry = nullptr;  // nullptr: HandlerRegistry::global()
};

// The worker executable: parses flags and environment, picks the handler (select_handler), and
// runs the job loop, a local test job, or the embedded endpoint with the loop pulling from it.
// Returns the process exit code: 2 for bad flags, settings or handler name, 1 when init() or the
// test job fails.
int worker_main(int argc, char** argv, const WorkerMainOptions& main_options);
int worker_main(int argc, char** argv, HandlerRegistry& registry = HandlerRegistry::global());

}  // namespace podworker

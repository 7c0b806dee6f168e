// The local endpoint: RunPod's client job API (/run, /runsync, /status, /stream, /cancel, /retry,
// /purge-queue, /health under /v2/{endpoint_id}/ and without the prefix for the default endpoint),
// OpenAI-compatible routes (/openai/v1/chat/completions as a job, /openai/v1/models) and the worker API (job-take, job-take-batch, job-done, job-stream, ping, job-stop) on one
// HTTP server, so a RunPod worker pointed at it with RUNPOD_WEBHOOK_* variables works unchanged.
// GET /openapi.json describes the client and OpenAI routes (runtime/endpoint/openapi.json).
//
// Embedding API (used by the `endpoint` executable and by `worker --serve-api`):
//
//   podworker::endpoint::Options options;          // every time and limit is a field here
//   options.port = 0;                               // 0 = the kernel picks a free port
//   podworker::endpoint::Server server(options);
//   std::uint16_t port = server.start();            // binds, listens, starts the I/O threads
//   ...                                             // serve; start() does not block
//   server.stop();                                  // graceful: finishes in-flight requests,
//                                                   // bounded by options.shutdown_timeout
//
// The server runs its io_context on `options.io_threads` std::jthreads of its own; long polls
// (runsync, stream, job-take, job-stop) are coroutines waiting on timers and hold no thread.
// Command-line parsing is shared: parse_cli() fills Options from flags, endpoint_main() is the
// whole `endpoint` program (parse, start, print the address, wait for SIGINT/SIGTERM, stop).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace podworker::endpoint {

using Millis = std::chrono::milliseconds;

// A route's rate limit: requests per window and requests in flight at once; 0 = unlimited.
struct RateLimit {
  std::uint32_t requests = 0;
  std::uint32_t concurrent = 0;
};

// RunPod's published per-endpoint limits (requests per 10 s / concurrent).
struct RateLimits {
  RateLimit run{1000, 200};
  RateLimit runsync{2000, 400};
  RateLimit status{2000, 400};
  RateLimit stream{2000, 400};
  RateLimit cancel{100, 20};
  RateLimit purge_queue{2, 0};
  RateLimit openai{2000, 400};  // every /openai/... route
};

struct Options {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;
  // Endpoint ids served under /v2/{id}/; the first is also served without the prefix.
  std::vector<std::string> endpoint_ids{"local"};
  // Empty: authentication is off (the server says so at start).
  std::string api_key;
  unsigned io_threads = 2;
  // The model id /openai/v1/models lists (the handler decides what actually runs).
  std::string openai_model = "podworker";
  // Tokens the served model's context holds (prompt and generated together): chat requests with a
  // larger max_tokens are refused before a job exists. 0 = not known (an endpoint started apart
  // from its workers); the handler, which knows its model, then refuses them as a failed job.
  // `worker --serve-api` sets it from the handler.
  int openai_context = 0;
  // The job store: "memory" (this process only) or "redis://HOST:PORT[/DB]" (shared by replicas).
  std::string store = "memory";

  bool rate_limit = true;
  RateLimits limits;
  Millis rate_window{10'000};

  std::size_t max_run_body = 10u << 20;      // /run: 413 beyond
  std::size_t max_runsync_body = 20u << 20;  // /runsync: 413 beyond
  std::size_t max_worker_body = 64u << 20;   // job-done, job-stream
  std::size_t max_other_body = 1u << 20;     // everything else
  // Payload bytes (input, webhook, s3Config) that queued jobs may hold together; a submit beyond
  // it is answered 429 and queues nothing. 0 = no cap.
  std::size_t max_queued_bytes = std::size_t{1} << 30;

  Millis runsync_wait_default{90'000};  // /runsync without ?wait=
  Millis runsync_wait_min{1'000};       // ?wait= is clamped to [min, max]
  Millis runsync_wait_max{300'000};
  Millis take_wait{20'000};    // job-take long poll; 204 after it
  Millis stop_wait{20'000};    // job-stop long poll; 204 after it
  Millis stream_wait{1'000};   // /stream (JSON) waits this long for a first new chunk
  Millis sse_keepalive{15'000};  // comment line sent on an idle SSE stream

  Millis retention{30 * 60'000};       // results of /run jobs, after they end
  Millis runsync_retention{60'000};    // results of /runsync jobs, after they end
  Millis execution_timeout_default{600'000};  // policy.executionTimeout, clamped to [min, max]
  Millis execution_timeout_min{5'000};
  Millis execution_timeout_max{7 * 24 * 3'600'000LL};
  Millis ttl_default{24 * 3'600'000LL};  // policy.ttl, clamped to [min, max]
  Millis ttl_min{10'000};
  Millis ttl_max{7 * 24 * 3'600'000LL};

  // A worker silent (no ping, no request) for longer than this loses its jobs: they are requeued
  // up to `retry_limit` times each, then FAILED.
  Millis heartbeat_grace{60'000};
  int retry_limit = 3;
  Millis sweep_interval{1'000};  // how often timeouts, TTLs, retention and heartbeats are checked

  int webhook_retries = 2;  // after the first attempt
  Millis webhook_retry_delay{10'000};
  Millis webhook_timeout{10'000};  // per attempt: connect, send, receive
  std::string webhook_ca_file;     // CA bundle that https webhooks are checked against (empty: the system's)

  Millis idle_timeout{120'000};    // a keep-alive connection with no request is closed after it
  Millis shutdown_timeout{5'000};  // stop() waits this long for in-flight requests
};

class Server {
 public:
  // Throws when the store cannot be opened (a Redis that cannot be reached).
  explicit Server(Options options);
  ~Server();  // stop()s if running
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on options.host:options.port, starts the I/O threads and returns the bound
  // port. Throws std::runtime_error when the address cannot be bound.
  std::uint16_t start();
  // Stops accepting, ends long polls, waits for in-flight requests (bounded by
  // options.shutdown_timeout), then joins the I/O threads. Idempotent; thread-safe, but never call
  // it from one of the server's own I/O threads. A stopped server cannot be started again.
  void stop();

  // Answers HTTP/1.1 requests given as bytes (several may follow one another, as on a keep-alive
  // connection) in process, with no socket: the same parser limits and request handling a
  // connection gets, and the bytes a client would have been sent back. A streamed (SSE) answer
  // finds its client already gone and ends the exchange. Runs the server's I/O on the calling
  // thread, so it is only for a server that was never start()ed (throws std::logic_error
  // otherwise); webhooks are not delivered. An exception escaping the request handling, which would
  // drop a connection, is rethrown. For fuzzing and tests.
  std::string serve_bytes(std::string_view requests);

  std::uint16_t port() const;
  std::string url() const;  // "http://host:port"
  const Options& options() const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// Applies command-line flags to `options` (see cli_help()). Returns an empty string on success,
// else a message naming the bad flag. `--help` sets `help`.
struct CliResult {
  std::string error;
  bool help = false;
};
CliResult parse_cli(const std::vector<std::string>& args, Options& options);
std::string cli_help(const std::string& program);

// The `endpoint` program: parse flags (and PODWORKER_API_KEY), start, print
// "podworker endpoint listening on http://HOST:PORT", wait for SIGINT/SIGTERM, stop.
int endpoint_main(int argc, char** argv);

}  // namespace podworker::endpoint

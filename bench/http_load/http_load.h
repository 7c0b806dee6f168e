// A closed-loop HTTP/1.1 load generator for the benchmarks: N keep-alive connections, each sending
// its next request the moment the previous response arrives, spread over a few client threads
// (Boost.Beast over Asio C++20 coroutines). Latency is measured per request, write to last byte.
// Used by bench_endpoint (/run, /status) and bench_e2e (/runsync through a worker).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace podworker::bench {

struct Target {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string authorization;  // the Authorization header value; empty = none
};

// Parses "http://host:port" into `target` (host and port only). Returns false when malformed.
bool parse_origin(const std::string& origin, Target& target);

struct Request {
  bool post = true;
  std::string path;  // e.g. "/v2/local/run"
  std::string body;  // JSON, sent when post
};

// Builds connection `connection`'s next request; `sequence` counts that connection's requests.
using RequestMaker = std::function<Request(std::size_t connection, std::uint64_t sequence)>;

struct LoadOptions {
  std::size_t connections = 1;
  unsigned threads = 2;
  std::chrono::milliseconds warmup{300};   // requests run but are not counted
  std::chrono::milliseconds measure{2000};
  // When set, a 2xx response whose body it rejects counts as an error (e.g. a /runsync answer
  // that is not COMPLETED). Called from client threads: must be thread-safe.
  std::function<bool(const std::string& body)> accept;
};

struct LoadResult {
  std::uint64_t ok = 0;      // 2xx responses inside the window
  std::uint64_t errors = 0;  // anything else (status, connection error), warmup included
  std::string first_error;
  double seconds = 0;
  std::vector<double> latencies_us;  // of the ok responses, sorted ascending

  double per_second() const { return seconds > 0 ? static_cast<double>(ok) / seconds : 0; }
  // Nearest-rank percentile in milliseconds; 0 when there are no samples.
  double percentile_ms(double p) const;
};

// Runs the load; returns after warmup + measure, once every connection's last request ended.
LoadResult run_load(const Target& target, const LoadOptions& options, const RequestMaker& make);

// One blocking request on a fresh connection (setup steps: submit a job, read a status).
struct Response {
  int status = 0;
  std::string body;
};
Response request_once(const Target& target, const Request& request,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(30000));

}  // namespace podworker::bench

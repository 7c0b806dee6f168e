// Shared by the endpoint's HTTP tests: a server on an ephemeral port with short timings, and the
// worker-side steps every test needs.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "http_client.h"
#include "podworker/endpoint/server.h"
#include "podworker/json.h"

namespace pe = podworker::endpoint;
namespace pj = podworker::json;
using podworker::test::eventually;
using podworker::test::HttpClient;
using podworker::test::Response;
using podworker::test::SseReader;
using podworker::test::WebhookReceiver;
using namespace std::chrono_literals;

namespace podworker::test {

// Short timings so every wait in a test ends in milliseconds.
inline pe::Options fast_options() {
  pe::Options o;
  o.port = 0;
  o.io_threads = 2;
  o.rate_limit = false;
  o.take_wait = 200ms;
  o.stop_wait = 200ms;
  o.stream_wait = 100ms;
  o.sse_keepalive = 200ms;
  o.sweep_interval = 10ms;
  o.runsync_wait_min = 1ms;
  o.execution_timeout_min = 1ms;
  o.ttl_min = 1ms;
  o.webhook_retry_delay = 50ms;
  o.webhook_timeout = 5s;
  o.shutdown_timeout = 5s;
  return o;
}

struct Endpoint {
  explicit Endpoint(pe::Options o = fast_options()) : server(std::move(o)) { port = server.start(); }
  pe::Server server;
  std::uint16_t port = 0;
};

inline std::string str(const pj::Value& doc, const char* key) { return pj::get_string(doc, key); }

inline std::string job_id(const Response& r) {
  REQUIRE(r.status == 200);
  return str(r.json(), "id");
}

// The worker side: takes a job, waiting through 204s (the long poll is short in tests).
inline pj::Document take(HttpClient& c, const std::string& worker, const std::string& prefix = "/v2/local") {
  pj::Document job;
  REQUIRE(eventually([&] {
    Response r = c.get(prefix + "/job-take/" + worker + "?gpu=x&job_in_progress=0");
    if (r.status != 200) return false;
    job = r.json();
    return true;
  }));
  return job;
}

inline std::string status_of(HttpClient& c, const std::string& id) {
  Response r = c.get("/v2/local/status/" + id);
  if (r.status == 404) return "GONE";
  REQUIRE(r.status == 200);
  return str(r.json(), "status");
}

inline const Headers kFormHeader{{"Content-Type", "application/x-www-form-urlencoded"}};

}  // namespace podworker::test

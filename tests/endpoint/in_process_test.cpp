// Server::serve_bytes: the request path a connection takes, driven in process (what the endpoint
// fuzz target runs), answers like the server does on a socket.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "podworker/endpoint/server.h"

namespace pe = podworker::endpoint;

namespace {

pe::Options in_process_options() {
  pe::Options o;
  o.port = 0;
  o.take_wait = o.stream_wait = o.stop_wait = pe::Millis(0);
  o.runsync_wait_default = o.runsync_wait_min = pe::Millis(0);
  o.max_run_body = 64;
  return o;
}

std::string post(const std::string& target, const std::string& body) {
  return "POST " + target +
         " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
         std::to_string(body.size()) + "\r\n\r\n" + body;
}

std::string get(const std::string& target) {
  return "GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
}

std::string json_id(const std::string& response) {
  const std::string key = R"("id":")";
  const auto at = response.find(key);
  REQUIRE(at != std::string::npos);
  return response.substr(at + key.size(), response.find('"', at + key.size()) - at - key.size());
}

}  // namespace

TEST_CASE("serve_bytes: run, take, done and status through the real request path") {
  pe::Server server(in_process_options());
  const std::string run = server.serve_bytes(post("/v2/local/run", R"({"input":{"n":1}})"));
  CHECK(run.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(run.find(R"("status":"IN_QUEUE")") != std::string::npos);
  const std::string id = json_id(run);

  const std::string taken = server.serve_bytes(get("/v2/local/job-take/w1"));
  CHECK(taken.find(R"("id":")" + id + '"') != std::string::npos);
  CHECK(taken.find(R"("input":{"n":1})") != std::string::npos);
  CHECK(
      server.serve_bytes(get("/v2/local/job-take/w1")).starts_with("HTTP/1.1 204 No Content\r\n"));

  // Two requests back to back on one "connection": both are answered, in order.
  const std::string both = server.serve_bytes(
      post("/v2/local/job-done/w1/" + id, R"({"output":"ok"})") + get("/v2/local/status/" + id));
  const auto accepted = both.find(R"({"status":"accepted"})");
  const auto completed = both.find(R"("status":"COMPLETED")");
  REQUIRE(accepted != std::string::npos);
  REQUIRE(completed != std::string::npos);
  CHECK(accepted < completed);
  CHECK(both.find(R"("output":"ok")") != std::string::npos);
}

TEST_CASE("serve_bytes: limits, bad requests and a started server") {
  pe::Server server(in_process_options());
  // Over the route's body limit: 413, and the exchange ends as a connection would be closed.
  const std::string big = server.serve_bytes(
      post("/run", R"({"input":")" + std::string(100, 'x') + "\"}}") + get("/health"));
  CHECK(big.starts_with("HTTP/1.1 413 Payload Too Large\r\n"));
  CHECK(big.find("/health") == std::string::npos);
  CHECK(big.find(R"("jobs")") == std::string::npos);
  CHECK(server.serve_bytes(post("/run", "[1,")).starts_with("HTTP/1.1 400 Bad Request\r\n"));
  CHECK(server.serve_bytes(get("/nowhere")).starts_with("HTTP/1.1 404 Not Found\r\n"));
  // Not HTTP, or cut short: nothing is answered.
  CHECK(server.serve_bytes("\x01\x02 nonsense\r\n\r\n").empty());
  CHECK(server.serve_bytes("GET /health HTTP/1.1\r\nHost:").empty());
  CHECK(server.serve_bytes(get("/health")).find(R"("inQueue":0)") != std::string::npos);

  pe::Server started(in_process_options());
  started.start();
  CHECK_THROWS_AS(started.serve_bytes(get("/health")), std::logic_error);
  started.stop();
}

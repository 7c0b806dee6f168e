// What survives what, with real processes: an `endpoint` replica SIGKILLed and started again on
// the same Redis finds its queued, running and finished jobs (and takes the running job's late
// result); a redis-server with AOF on, stopped and started again, has lost nothing it acknowledged;
// a `worker --serve-api --store` process takes jobs submitted through another replica.
#include <doctest/doctest.h>

#include <chrono>
#include <optional>
#include <string>

#include "../worker/child_process.h"
#include "endpoint_fixture.h"
#include "http_client.h"
#include "redis_test_server.h"

using podworker::test::ChildProcess;
using podworker::test::job_id;
using podworker::test::RedisTestServer;
using podworker::test::status_of;
using podworker::test::str;
using podworker::test::take;

namespace {

// The `endpoint` program on a free port, on `redis`.
struct EndpointProcess {
  explicit EndpointProcess(const RedisTestServer& redis)
      : child(PODWORKER_ENDPOINT_BINARY,
              {"--port", "0", "--store", redis.url(), "--sweep-ms", "50", "--take-wait-ms", "200",
               "--stop-wait-ms", "200", "--no-rate-limit", "--log-level", "WARN"},
              {}) {
    const auto line = child.read_line_with("listening on http://127.0.0.1:", 10s);
    REQUIRE(line);
    port = static_cast<std::uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));
  }
  ChildProcess child;
  std::uint16_t port = 0;
};

}  // namespace

TEST_CASE(
    "redis restart: a SIGKILLed endpoint's jobs are all there for the next one; AOF keeps them "
    "across redis") {
  RedisTestServer redis(/*aof=*/true);
  std::string done, running, queued;
  {
    EndpointProcess ep(redis);
    HttpClient c(ep.port);
    done = job_id(c.post("/v2/local/run", R"({"input":{"n":1}})"));
    running = job_id(c.post("/v2/local/run", R"({"input":{"n":2}})"));
    queued = job_id(c.post("/v2/local/run", R"({"input":{"n":3}})"));
    CHECK(str(take(c, "w1"), "id") == done);
    CHECK(c.post("/v2/local/job-done/w1/" + done, R"({"output":"one"})").status == 200);
    CHECK(str(take(c, "w1"), "id") == running);
    CHECK(c.post("/v2/local/job-stream/w1/" + running, R"({"output":"chunk"})").status == 200);
    ep.child.signal(SIGKILL);
    CHECK(ep.child.wait() == 128 + SIGKILL);
  }
  {
    EndpointProcess ep(redis);
    HttpClient c(ep.port);
    CHECK(status_of(c, done) == "COMPLETED");
    CHECK(str(c.get("/v2/local/status/" + done).json(), "output") == "one");
    CHECK(status_of(c, running) == "IN_PROGRESS");
    CHECK(status_of(c, queued) == "IN_QUEUE");
    const pj::Document s = c.get("/v2/local/stream/" + running).json();
    REQUIRE(s["stream"].Size() == 1);
    // The worker went on while the endpoint was away: its result is accepted by the new process.
    CHECK(c.post("/v2/local/job-done/w1/" + running, R"({"output":"two"})").status == 200);
    CHECK(status_of(c, running) == "COMPLETED");

    // Acknowledged, then redis-server goes down and comes back from its AOF.
    const std::string late = job_id(c.post("/v2/local/run", R"({"input":{"n":4}})"));
    redis.restart();
    // The endpoint reconnects by itself; every job is as it was.
    REQUIRE(eventually([&] { return c.get("/v2/local/status/" + late).status == 200; }));
    CHECK(status_of(c, late) == "IN_QUEUE");
    CHECK(status_of(c, done) == "COMPLETED");
    CHECK(status_of(c, running) == "COMPLETED");
    CHECK(status_of(c, queued) == "IN_QUEUE");
    // And a worker completes the rest, queue order kept.
    CHECK(str(take(c, "w2"), "id") == queued);
    CHECK(c.post("/v2/local/job-done/w2/" + queued, R"({"output":"three"})").status == 200);
    CHECK(str(take(c, "w2"), "id") == late);
    CHECK(c.post("/v2/local/job-done/w2/" + late, R"({"output":"four"})").status == 200);
    const pj::Document h = c.get("/v2/local/health").json();
    CHECK(h["jobs"]["completed"].GetInt() == 4);
    CHECK(h["jobs"]["inQueue"].GetInt() == 0);
  }
}

TEST_CASE("redis: an endpoint whose Redis cannot be reached refuses to start with a clear error") {
  const std::uint16_t nobody = podworker::test::free_port();
  ChildProcess ep(PODWORKER_ENDPOINT_BINARY,
                  {"--port", "0", "--store", "redis://127.0.0.1:" + std::to_string(nobody)}, {});
  CHECK(ep.wait() == 1);
  ChildProcess bad(PODWORKER_ENDPOINT_BINARY, {"--store", "redis:/nowhere"}, {});
  CHECK(bad.wait() == 2);
}

TEST_CASE("redis: worker --serve-api --store runs jobs submitted through another replica") {
  RedisTestServer redis;
  ChildProcess worker(PODWORKER_WORKER_BINARY,
                      {"--serve-api", "--api-port", "0", "--handler", "echo", "--store",
                       redis.url(), "--", "--no-rate-limit"},
                      {"RUNPOD_LOG_LEVEL=WARN"});
  REQUIRE(worker.read_line_with("listening on ", 20s));
  pe::Options o = podworker::test::fast_options();
  o.store = redis.url();
  podworker::test::Endpoint other(o);
  HttpClient c(other.port);
  const pj::Document st = c.post("/v2/local/runsync?wait=10000", R"({"input":{"a":"b"}})").json();
  CHECK(str(st, "status") == "COMPLETED");
  CHECK(pj::to_string(st["output"]) == R"({"a":"b"})");
  worker.signal(SIGTERM);
  CHECK(worker.wait() == 0);
}

TEST_CASE(
    "redis: while Redis is away requests get 503 and the endpoint goes on; it recovers by itself") {
  RedisTestServer redis(/*aof=*/true);
  pe::Options o = podworker::test::fast_options();
  o.store = redis.url();
  o.take_wait = 300ms;
  podworker::test::Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  CHECK(str(take(c, "w0"), "id") == id);
  CHECK(c.post("/v2/local/job-done/w0/" + id, R"({"output":"kept"})").status == 200);
  // A worker's long poll open while Redis goes away ends with an answer, not a dead endpoint.
  int polled = 0;
  {
    std::jthread poll([&] {
      HttpClient worker(ep.port);
      polled = worker.get("/v2/local/job-take/w2?gpu=x&job_in_progress=0").status;
    });
    REQUIRE(eventually(
        [&] { return c.get("/v2/local/health").json()["workers"]["idle"].GetInt() == 2; }));
    redis.stop();
  }
  CHECK((polled == 503 || polled == 204));
  CHECK(c.get("/v2/local/status/" + id).status == 503);
  CHECK(c.post("/v2/local/run", R"({"input":{}})").status == 503);
  CHECK(c.get("/v2/local/job-take/w1?gpu=x&job_in_progress=0").status == 503);
  redis.start();
  REQUIRE(eventually([&] { return c.get("/v2/local/status/" + id).status == 200; }));
  CHECK(status_of(c, id) == "COMPLETED");
  const std::string next = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  CHECK(str(take(c, "w1"), "id") == next);
}

TEST_CASE("redis: a Redis that has lost the store's functions gets them again on the next call") {
  // A restart without persistence, or FUNCTION FLUSH: the library loaded at start is gone.
  RedisTestServer redis;
  pe::Options o = podworker::test::fast_options();
  o.store = redis.url();
  podworker::test::Endpoint ep(o);
  HttpClient c(ep.port);
  podworker::endpoint::RedisConnection admin(redis.address(), 5s);
  CHECK(podworker::endpoint::reply_text(*admin.command({"FUNCTION", "FLUSH"})) == "OK");
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{"x":1}})"));
  CHECK(status_of(c, id) == "IN_QUEUE");
  CHECK(str(take(c, "w1"), "id") == id);
  CHECK(c.post("/v2/local/job-done/w1/" + id, R"({"output":"back"})").status == 200);
  CHECK(status_of(c, id) == "COMPLETED");
  // Loaded once more, not once per call.
  const auto libraries = admin.command({"FUNCTION", "LIST"});
  CHECK(libraries->elements == 1);
}

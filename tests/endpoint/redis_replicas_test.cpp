// Two endpoint servers sharing one redis-server are replicas of one endpoint: over real HTTP, a job
// submitted through one is taken by a worker long-polling the other, chunks posted through one are
// read through the other (JSON /stream and SSE), a cancel through either reaches the worker's stop
// channel on the other, and both count the same health.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include "endpoint_fixture.h"
#include "http_client.h"
#include "redis_test_server.h"
#include "time_budget.h"

using podworker::test::Endpoint;
using podworker::test::fast_options;
using podworker::test::job_id;
using podworker::test::RedisTestServer;
using podworker::test::status_of;
using podworker::test::str;
using podworker::test::take;

namespace {

using podworker::testing::time_budget;

pe::Options replica_options(const RedisTestServer& redis) {
  pe::Options o = fast_options();
  o.store = redis.url();
  o.take_wait = 5s;  // long enough that only a cross-replica wake-up explains a fast answer
  o.stop_wait = 5s;
  return o;
}

// A long poll on its own thread, started before what it waits for exists.
struct PendingGet {
  PendingGet(std::uint16_t port, std::string target)
      : started(std::chrono::steady_clock::now()), thread([this, port, target = std::move(target)] {
          HttpClient client(port);
          response = client.get(target);
          answered = std::chrono::steady_clock::now();
        }) {}
  Response get() {
    thread.join();
    return response;
  }
  std::chrono::milliseconds waited() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(answered - started);
  }
  std::chrono::steady_clock::time_point started, answered;
  Response response;
  std::jthread thread;
};

// A worker waits on B's job-take; the next submit through A must reach it within 500 ms.
void check_submit_wakes_poll(HttpClient& ca, std::uint16_t b_port, HttpClient& cb) {
  PendingGet poll(b_port, "/v2/local/job-take/w1?gpu=x&job_in_progress=0");
  REQUIRE(eventually(
      [&] { return cb.get("/v2/local/health").json()["workers"]["idle"].GetInt() >= 1; }));
  const auto submitted = std::chrono::steady_clock::now();
  const std::string id = job_id(ca.post("/v2/local/run", R"({"input":{}})"));
  Response taken = poll.get();
  REQUIRE(taken.status == 200);
  CHECK(str(taken.json(), "id") == id);
  CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(poll.answered - submitted) < time_budget(500ms));
}

std::string health_body(HttpClient& c) {
  pj::Document h = c.get("/v2/local/health").json();
  return pj::to_string(h);
}

}  // namespace

TEST_CASE(
    "redis replicas: submit on A, take on B at once; stream, SSE, cancel and health across "
    "replicas") {
  RedisTestServer redis;
  Endpoint a(replica_options(redis));
  Endpoint b(replica_options(redis));
  HttpClient ca(a.port), cb(b.port);

  // A worker waits on B before the job exists; the submit through A wakes it.
  PendingGet poll(b.port, "/v2/local/job-take/w1?gpu=x&job_in_progress=0");
  REQUIRE(eventually(
      [&] { return cb.get("/v2/local/health").json()["workers"]["idle"].GetInt() == 1; }));
  const auto submitted = std::chrono::steady_clock::now();
  const std::string id = job_id(ca.post("/v2/local/run", R"({"input":{"prompt":"hi"}})"));
  Response taken = poll.get();
  REQUIRE(taken.status == 200);
  CHECK(str(taken.json(), "id") == id);
  CHECK(std::chrono::duration_cast<std::chrono::milliseconds>(poll.answered - submitted) < time_budget(1s));
  CHECK(status_of(ca, id) == "IN_PROGRESS");
  CHECK(str(cb.get("/v2/local/status/" + id).json(), "workerId") == "w1");

  // Chunks posted through A: an SSE reader on B sees them live, the JSON poll on B returns them.
  SseReader sse(b.port, "/v2/local/stream/" + id);
  CHECK(ca.post("/v2/local/job-stream/w1/" + id, R"({"output":"first"})").status == 200);
  REQUIRE(sse.wait_for(R"(data: {"output":"first"})"));
  CHECK(ca.post("/v2/local/job-stream/w1/" + id, R"({"output":"second"})").status == 200);
  REQUIRE(sse.wait_for(R"(data: {"output":"second"})"));
  pj::Document s = cb.get("/v2/local/stream/" + id).json();
  REQUIRE(s["stream"].Size() == 2);
  CHECK(str(s["stream"][0], "output") == "first");
  CHECK(str(s["stream"][1], "output") == "second");

  // Health agrees on both replicas.
  const std::string ha = health_body(ca);
  CHECK(ha == health_body(cb));
  const pj::Document h = pj::parse(ha);
  CHECK(h["jobs"]["inProgress"].GetInt() == 1);
  CHECK(h["workers"]["running"].GetInt() == 1);

  // The worker listens for stops on A; the client cancels through B (whichever comes first, the
  // stop arrives).
  PendingGet stop(a.port, "/v2/local/job-stop/w1");
  CHECK(cb.post("/v2/local/cancel/" + id).status == 200);
  Response stopped = stop.get();
  REQUIRE(stopped.status == 200);
  CHECK(stopped.body.find(id) != std::string::npos);
  CHECK(stop.waited() < time_budget(2s));
  CHECK(status_of(ca, id) == "CANCELLED");
  const std::string all = sse.finish();
  CHECK(all.find("CANCELLED") != std::string::npos);
  CHECK(ca.post("/v2/local/job-done/w1/" + id, R"({"output":"late"})").status == 200);
  CHECK(status_of(cb, id) == "CANCELLED");
}

TEST_CASE("redis replicas: jobs through both replicas are each taken exactly once") {
  RedisTestServer redis;
  pe::Options o = replica_options(redis);
  o.take_wait = 200ms;  // the last poll finds nothing and answers 204 after it
  Endpoint a(o);
  Endpoint b(o);
  HttpClient ca(a.port), cb(b.port);
  std::vector<std::string> ids;
  for (int i = 0; i < 10; ++i)
    ids.push_back(job_id((i % 2 == 0 ? ca : cb).post("/v2/local/run", R"({"input":{}})")));
  std::vector<std::string> seen;
  for (int i = 0; i < 10; ++i) {
    HttpClient& c = i % 2 == 0 ? cb : ca;
    const pj::Document job = take(c, "w" + std::to_string(i % 3));
    seen.push_back(str(job, "id"));
    CHECK(c.post("/v2/local/job-done/w" + std::to_string(i % 3) + "/" + seen.back(),
                 R"({"output":1})")
              .status == 200);
  }
  CHECK(seen == ids);  // FIFO across replicas, no job twice
  CHECK(ca.get("/v2/local/job-take/w9?gpu=x&job_in_progress=0").status == 204);
  const pj::Document h = cb.get("/v2/local/health").json();
  CHECK(h["jobs"]["completed"].GetInt() == 10);
  CHECK(h["jobs"]["inQueue"].GetInt() == 0);
}

TEST_CASE(
    "redis replicas: a job of a worker gone silent on one replica is requeued and run through the "
    "other") {
  RedisTestServer redis;
  pe::Options o = replica_options(redis);
  o.take_wait = 200ms;
  o.heartbeat_grace = 300ms;  // both replicas sweep; either may requeue
  Endpoint a(o);
  Endpoint b(o);
  HttpClient ca(a.port), cb(b.port);
  const std::string id = job_id(ca.post("/v2/local/run", R"({"input":{}})"));
  CHECK(str(take(ca, "lost"), "id") == id);
  // "lost" never pings; a worker polling B gets the job once the grace has passed.
  CHECK(str(take(cb, "w2"), "id") == id);
  CHECK(cb.post("/v2/local/job-done/lost/" + id, R"({"output":"stale"})").status == 409);
  CHECK(ca.post("/v2/local/job-done/w2/" + id, R"({"output":"fresh"})").status == 200);
  const pj::Document st = cb.get("/v2/local/status/" + id).json();
  CHECK(str(st, "status") == "COMPLETED");
  CHECK(str(st, "output") == "fresh");
  CHECK(ca.get("/v2/local/health").json()["jobs"]["retried"].GetInt() == 1);
  CHECK(cb.get("/v2/local/health").json()["jobs"]["retried"].GetInt() == 1);
}

TEST_CASE(
    "redis replicas: a replica that starts while another runs alone is woken by its next submit "
    "at once") {
  RedisTestServer redis;
  Endpoint a(replica_options(redis));
  HttpClient ca(a.port);
  // A alone: its scripts learn that no other replica listens, and remember it for a while.
  const std::string first = job_id(ca.post("/v2/local/run", R"({"input":{}})"));
  CHECK(str(take(ca, "w0"), "id") == first);
  CHECK(ca.post("/v2/local/job-done/w0/" + first, R"({"output":1})").status == 200);

  // B starts right after, and a worker waits on it: A's next submit must reach it at once.
  Endpoint b(replica_options(redis));
  HttpClient cb(b.port);
  check_submit_wakes_poll(ca, b.port, cb);
}

TEST_CASE(
    "redis replicas: a replica whose change channel came back is woken by the next submit at "
    "once") {
  RedisTestServer redis;
  Endpoint a(replica_options(redis));
  Endpoint b(replica_options(redis));
  HttpClient ca(a.port), cb(b.port);
  podworker::endpoint::RedisConnection admin(redis.address(), 5s);
  const auto listeners = [&] {
    const auto r = admin.command({"PUBSUB", "NUMSUB", "pw:{local}:ev"});
    return r->element[1]->integer;
  };
  REQUIRE(listeners() == 2);
  // Both subscriptions drop. A job run through A meanwhile: its scripts see no other listener and
  // remember it for a while.
  admin.command({"CLIENT", "KILL", "TYPE", "pubsub"});
  const std::string first = job_id(ca.post("/v2/local/run", R"({"input":{}})"));
  CHECK(str(take(ca, "w0"), "id") == first);
  CHECK(ca.post("/v2/local/job-done/w0/" + first, R"({"output":1})").status == 200);
  REQUIRE(eventually([&] { return listeners() == 2; }));

  // B has subscribed again and told the scripts: A's next submit reaches a worker waiting on B.
  check_submit_wakes_poll(ca, b.port, cb);
}

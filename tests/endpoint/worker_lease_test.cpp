// The worker's hold on a job over real HTTP: a job-take poll whose worker has gone is never handed
// a job, only the worker holding a job may post for it, a requeued job starts with no chunks, and
// stream readers never take chunks from one another.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "endpoint_fixture.h"
#include "http_client.h"
#include "time_budget.h"

using podworker::test::Endpoint;
using podworker::test::fast_options;
using podworker::test::job_id;
using podworker::test::status_of;
using podworker::test::str;
using podworker::test::take;

namespace {

using podworker::testing::time_budget;

namespace asio = boost::asio;

// A worker's long poll (job-take, or `route` such as job-stop) sent on a raw connection, which
// close() drops as a worker process that exits or is killed does.
class RawPoll {
 public:
  RawPoll(std::uint16_t port, const std::string& worker, const std::string& route = "job-take") : socket_(io_) {
    socket_.connect({asio::ip::address_v4::loopback(), port});
    const std::string request =
        "GET /v2/local/" + route + "/" + worker + "?gpu=x&job_in_progress=0 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    asio::write(socket_, asio::buffer(request));
  }
  void close() {
    boost::system::error_code ignored;
    socket_.close(ignored);
  }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
};

std::int64_t idle_workers(HttpClient& c) { return c.get("/v2/local/health").json()["workers"]["idle"].GetInt(); }

// A worker's job-take on its own thread, started before the job exists.
struct PendingTake {
  PendingTake(std::uint16_t port, std::string worker)
      : thread([this, port, worker = std::move(worker)] {
          HttpClient client(port);
          response = client.get("/v2/local/job-take/" + worker + "?gpu=x&job_in_progress=0");
        }) {}
  Response get() {
    thread.join();
    return response;
  }
  Response response;
  std::jthread thread;
};

}  // namespace

TEST_CASE(
    "departed worker: a job-take poll whose client has gone is handed no job; a live worker gets "
    "it") {
  pe::Options o = fast_options();
  o.take_wait = 20s;  // as in production: the dead poll would outlive the test
  Endpoint ep(o);
  HttpClient c(ep.port);

  // The first worker polls, then goes away while its poll waits. (A worker counts as idle for the
  // heartbeat grace after its last request began, gone or not.)
  {
    RawPoll gone(ep.port, "departed");
    REQUIRE(eventually([&] { return idle_workers(c) == 1; }));
    gone.close();
  }
  const std::string first = job_id(c.post("/v2/local/run", R"({"input":{"n":1}})"));
  const auto start = std::chrono::steady_clock::now();
  pj::Document job = take(c, "live");
  CHECK(str(job, "id") == first);
  CHECK(std::chrono::steady_clock::now() - start < time_budget(1s));
  pj::Document st = c.get("/v2/local/status/" + first).json();
  CHECK(str(st, "workerId") == "live");

  // A live worker already polling gets the job at once although a gone poll waited longer.
  const std::int64_t idle = idle_workers(c);
  RawPoll gone_again(ep.port, "departed2");
  REQUIRE(eventually([&] { return idle_workers(c) == idle + 1; }));
  gone_again.close();
  PendingTake waiting(ep.port, "waiting");
  REQUIRE(eventually([&] { return idle_workers(c) == idle + 2; }));
  const auto submitted = std::chrono::steady_clock::now();
  const std::string second = job_id(c.post("/v2/local/run", R"({"input":{"n":2}})"));
  Response r = waiting.get();
  CHECK(std::chrono::steady_clock::now() - submitted < time_budget(1s));
  REQUIRE(r.status == 200);
  CHECK(str(r.json(), "id") == second);
  CHECK(str(c.get("/v2/local/status/" + second).json(), "workerId") == "waiting");
  CHECK(c.get("/v2/local/health").json()["jobs"]["retried"].GetInt() == 0);
}

TEST_CASE("departed worker: a job-stop poll whose client has gone does not swallow the stop request") {
  pe::Options o = fast_options();
  o.stop_wait = 20s;
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  {
    // The stop channel's first poll is the worker's first request: health shows it once it is open.
    RawPoll gone(ep.port, "w1", "job-stop");
    REQUIRE(eventually([&] { return idle_workers(c) == 1; }));
    CHECK(str(take(c, "w1"), "id") == id);
    gone.close();
  }
  // The worker's stop channel reconnects; the cancel must reach it there.
  Response stop;
  std::jthread poll([&] {
    HttpClient client(ep.port);
    stop = client.get("/v2/local/job-stop/w1?gpu=x");
  });
  CHECK(c.post("/v2/local/cancel/" + id).status == 200);
  poll.join();
  REQUIRE(stop.status == 200);
  const pj::Document body = stop.json();
  REQUIRE(body["jobsToStop"].Size() == 1);
  CHECK(std::string(body["jobsToStop"][0].GetString()) == id);
}

TEST_CASE("ownership: only the worker holding a job posts results, progress and chunks for it") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string held = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  CHECK(str(take(c, "holder"), "id") == held);
  const std::string queued = job_id(c.post("/v2/local/run", R"({"input":{}})"));

  // Another worker: refused, the job untouched.
  Response r = c.post("/v2/local/job-done/intruder/" + held, R"({"output":"forged"})");
  CHECK(r.status == 409);
  CHECK(str(r.json(), "error").find(held) != std::string::npos);
  CHECK(c.post("/v2/local/job-done/intruder/" + held, R"({"status":"IN_PROGRESS","output":"p"})").status == 409);
  CHECK(c.post("/v2/local/job-stream/intruder/" + held, R"({"output":"c"})").status == 409);
  CHECK(c.post("/v2/local/job-done/intruder/" + held, "{}").status == 409);
  pj::Document st = c.get("/v2/local/status/" + held).json();
  CHECK(str(st, "status") == "IN_PROGRESS");
  CHECK(str(st, "workerId") == "holder");
  CHECK_FALSE(st.HasMember("output"));
  CHECK(c.get("/v2/local/stream/" + held).json()["stream"].Size() == 0);

  // A job still queued cannot be finished by anyone, and still runs.
  CHECK(c.post("/v2/local/job-done/holder/" + queued, R"({"output":1})").status == 409);
  CHECK(status_of(c, queued) == "IN_QUEUE");
  CHECK(str(take(c, "second"), "id") == queued);

  // A status that is not a worker's is malformed, even from the holder.
  CHECK(c.post("/v2/local/job-done/holder/" + held, R"({"status":"BOGUS"})").status == 400);
  CHECK(c.post("/v2/local/job-done/holder/" + held, R"({"status":7,"output":1})").status == 400);
  CHECK(status_of(c, held) == "IN_PROGRESS");

  // The holder's posts are taken.
  CHECK(c.post("/v2/local/job-stream/holder/" + held, R"({"output":"c"})").status == 200);
  CHECK(c.post("/v2/local/job-done/holder/" + held, R"({"output":"real"})").status == 200);
  st = c.get("/v2/local/status/" + held).json();
  CHECK(str(st, "status") == "COMPLETED");
  CHECK(str(st, "output") == "real");
  // After the end: the holder's late post is ignored, anyone else's refused.
  CHECK(c.post("/v2/local/job-done/holder/" + held, R"({"output":"late"})").json()["status"] == "ignored");
  CHECK(c.post("/v2/local/job-done/intruder/" + held, R"({"output":"late"})").status == 409);
  CHECK(str(c.get("/v2/local/status/" + held).json(), "output") == "real");
}

TEST_CASE("listing: a job its pinging worker no longer lists is requeued after the grace; a listed one stays") {
  pe::Options o = fast_options();
  o.heartbeat_grace = 300ms;
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string listed = job_id(c.post("/v2/local/run", R"({"input":{"n":1}})"));
  const std::string dropped = job_id(c.post("/v2/local/run", R"({"input":{"n":2}})"));
  CHECK(str(take(c, "w1"), "id") == listed);
  CHECK(str(take(c, "w1"), "id") == dropped);
  // The worker lists both, then (alive: it pings) one only: the other's result can never come.
  // (A job never listed at all is a take whose answer was lost: no retry, see the store suite.)
  c.get("/v2/local/ping/w1?job_id=" + listed + "," + dropped + "&runpod_version=1.12.0");
  const auto start = std::chrono::steady_clock::now();
  REQUIRE(eventually([&] {
    c.get("/v2/local/ping/w1?job_id=" + listed + "&runpod_version=1.12.0");
    return status_of(c, dropped) == "IN_QUEUE";
  }));
  CHECK(std::chrono::steady_clock::now() - start >= 300ms);
  CHECK(status_of(c, listed) == "IN_PROGRESS");
  CHECK(c.get("/v2/local/health").json()["jobs"]["retried"].GetInt() == 1);
  CHECK(c.post("/v2/local/job-done/w1/" + dropped, R"({"output":"late"})").status == 409);
  // The worker is told to stop it; the job runs again elsewhere.
  Response stop = c.get("/v2/local/job-stop/w1?gpu=x");
  REQUIRE(stop.status == 200);
  CHECK(std::string(stop.json()["jobsToStop"][0].GetString()) == dropped);
  CHECK(str(take(c, "w2"), "id") == dropped);
  CHECK(c.post("/v2/local/job-done/w1/" + listed, R"({"output":"ok"})").status == 200);
}

TEST_CASE("heartbeat requeue: the old run's chunks are dropped; stream readers each see every chunk") {
  pe::Options o = fast_options();
  o.heartbeat_grace = 300ms;
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  take(c, "silent");
  CHECK(c.post("/v2/local/job-stream/silent/" + id, R"({"output":"old run"})").status == 200);
  REQUIRE(eventually([&] { return status_of(c, id) == "IN_QUEUE"; }));
  take(c, "w2");

  SseReader first(ep.port, "/v2/local/stream/" + id);
  SseReader second(ep.port, "/v2/local/stream/" + id);
  c.post("/v2/local/job-stream/w2/" + id, R"({"output":"a"})");
  REQUIRE(first.wait_for(R"(data: {"output":"a"})"));
  REQUIRE(second.wait_for(R"(data: {"output":"a"})"));
  // A JSON poll in between takes nothing from the SSE readers.
  pj::Document polled = c.get("/v2/local/stream/" + id).json();
  REQUIRE(polled["stream"].Size() == 1);
  CHECK(str(polled["stream"][0], "output") == "a");
  c.post("/v2/local/job-stream/w2/" + id, R"({"output":"b"})");
  c.post("/v2/local/job-done/w2/" + id + "?isStream=true", R"({"output":[]})");
  for (SseReader* reader : {&first, &second}) {
    const std::string all = reader->finish();
    CHECK(all.find("old run") == std::string::npos);
    CHECK(all.find(R"(data: {"output":"a"})") < all.find(R"(data: {"output":"b"})"));
    CHECK(all.find("event: done") != std::string::npos);
  }
  polled = c.get("/v2/local/stream/" + id).json();
  REQUIRE(polled["stream"].Size() == 1);
  CHECK(str(polled["stream"][0], "output") == "b");
}

TEST_CASE("openai: a concurrent /stream reader does not take the answer of a non-streamed call") {
  Endpoint ep;
  HttpClient worker(ep.port);
  Response answer;
  std::jthread call([&] {
    HttpClient client(ep.port);
    answer = client.post("/openai/v1/chat/completions",
                         R"({"model":"podworker","messages":[{"role":"user","content":"Hi"}]})");
  });
  const std::string id = str(take(worker, "w1"), "id");
  // A generator handler's whole completion, as its one chunk.
  const std::string completion = R"({"id":"chatcmpl-1","object":"chat.completion","choices":[]})";
  CHECK(worker.post("/v2/local/job-stream/w1/" + id, R"({"output":)" + completion + "}").status == 200);
  // Another client polls the job's stream before the call collects its output.
  CHECK(worker.get("/v2/local/stream/" + id).json()["stream"].Size() == 1);
  worker.post("/v2/local/job-done/w1/" + id + "?isStream=true", R"({"output":[]})");
  call.join();
  CHECK(answer.status == 200);
  CHECK(answer.body == completion);
}

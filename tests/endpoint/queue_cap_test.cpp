// The cap on payload bytes held by queued jobs (--max-queued-bytes), over real HTTP: a submit past
// it is a 429 with a message that says why, nothing already queued is disturbed, and the bytes come
// back as jobs leave the queue (taken, cancelled, purged).
#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "endpoint_fixture.h"
#include "http_client.h"

using podworker::test::Endpoint;
using podworker::test::fast_options;
using podworker::test::job_id;
using podworker::test::status_of;
using podworker::test::str;
using podworker::test::take;

namespace {

// A /run body whose input, stored as compact JSON, is exactly `bytes` long: {"p":"xx..."}.
std::string body_of_input_size(std::size_t bytes) {
  REQUIRE(bytes >= 8);
  return R"({"input":{"p":")" + std::string(bytes - 8, 'x') + "\"}}";
}

void check_queue_full(const Response& r) {
  CHECK(r.status == 429);
  CHECK(r.content_type == "application/json");
  const std::string message = str(r.json(), "error");
  CAPTURE(message);
  CHECK(message.find("queue full") != std::string::npos);
  CHECK(message.find("limit of 100 bytes") != std::string::npos);
  CHECK(message.find("--max-queued-bytes") != std::string::npos);
}

int in_queue(HttpClient& c) {
  return c.get("/health").json()["jobs"]["inQueue"].GetInt();
}

}  // namespace

TEST_CASE("queue cap: /run and /runsync past it are 429; queued jobs keep their place and input") {
  pe::Options o = fast_options();
  o.max_queued_bytes = 100;
  Endpoint ep(o);
  HttpClient c(ep.port);

  const std::string first = job_id(c.post("/v2/local/run", body_of_input_size(40)));
  const std::string second = job_id(c.post("/run", body_of_input_size(40)));
  const std::string third =
      job_id(c.post("/v2/local/run", body_of_input_size(20)));  // exactly at the cap

  Response r = c.post("/v2/local/run", body_of_input_size(8));
  check_queue_full(r);
  CHECK(str(r.json(), "error").find("hold 100 bytes and this job's 8 bytes") != std::string::npos);
  check_queue_full(c.post("/runsync?wait=1000", body_of_input_size(8)));
  check_queue_full(
      c.post("/v2/local/runsync", R"({"input":{}, "webhook":"http://127.0.0.1:1/x"})"));
  // A chat completion is a job too; its error takes OpenAI's shape.
  r = c.post("/openai/v1/chat/completions", R"({"messages":[{"role":"user","content":"hi"}]})");
  CHECK(r.status == 429);
  CHECK(str(r.json()["error"], "type") == "rate_limit_error");
  CHECK(str(r.json()["error"], "message").find("queue full") != std::string::npos);

  // Nothing was queued by the refusals, and what was queued is untouched.
  CHECK(in_queue(c) == 3);
  for (const std::string& id : {first, second, third}) CHECK(status_of(c, id) == "IN_QUEUE");
  CHECK(c.get("/health").status == 200);  // the server answers as before

  // Taking a job frees its bytes: 40 bytes fit again, 41 do not.
  pj::Document job = take(c, "w1");
  CHECK(str(job, "id") == first);
  CHECK(str(job["input"], "p") == std::string(32, 'x'));
  check_queue_full(c.post("/v2/local/run", body_of_input_size(41)));
  const std::string fourth = job_id(c.post("/v2/local/run", body_of_input_size(40)));
  check_queue_full(c.post("/v2/local/run", body_of_input_size(8)));

  // Cancelling a queued job frees its bytes too.
  CHECK(str(c.post("/v2/local/cancel/" + second).json(), "status") == "CANCELLED");
  const std::string fifth = job_id(c.post("/v2/local/run", body_of_input_size(40)));

  // The jobs still queued come out in order, with their inputs.
  job = take(c, "w1");
  CHECK(str(job, "id") == third);
  CHECK(str(job["input"], "p") == std::string(12, 'x'));
  CHECK(status_of(c, fourth) == "IN_QUEUE");
  CHECK(status_of(c, fifth) == "IN_QUEUE");

  // Purging frees everything: the whole cap is available again.
  CHECK(c.post("/v2/local/purge-queue").json()["removed"].GetInt() == 2);
  CHECK(in_queue(c) == 0);
  const std::string full = job_id(c.post("/v2/local/run", body_of_input_size(100)));
  check_queue_full(c.post("/v2/local/run", body_of_input_size(8)));
  CHECK(status_of(c, full) == "IN_QUEUE");
  // The jobs taken before are still running, unaffected by any of this.
  CHECK(status_of(c, first) == "IN_PROGRESS");
  CHECK(status_of(c, third) == "IN_PROGRESS");
}

TEST_CASE("queue cap: a /runsync job counts while queued and its bytes return when it is taken") {
  pe::Options o = fast_options();
  o.max_queued_bytes = 100;
  Endpoint ep(o);
  HttpClient c(ep.port);
  HttpClient worker(ep.port);

  // A runsync that waits for its result holds its bytes while queued...
  Response sync_reply;
  std::jthread client([&] {
    HttpClient own(ep.port);
    sync_reply = own.post("/runsync?wait=5000", body_of_input_size(60));
  });
  REQUIRE(podworker::test::eventually([&] { return in_queue(c) == 1; }));
  check_queue_full(c.post("/run", body_of_input_size(41)));

  // ...until a worker takes it; then the cap has room again while it runs.
  pj::Document job = take(worker, "w1");
  const std::string id = str(job, "id");
  const std::string queued = job_id(c.post("/run", body_of_input_size(100)));
  worker.post("/v2/local/job-done/w1/" + id, R"({"output":{"ok":true}})");
  client.join();
  CHECK(sync_reply.status == 200);
  CHECK(str(sync_reply.json(), "status") == "COMPLETED");
  CHECK(status_of(c, queued) == "IN_QUEUE");
}

TEST_CASE("queue cap: 0 turns it off; the flag sets it") {
  pe::Options o = fast_options();
  o.max_queued_bytes = 0;
  Endpoint ep(o);
  HttpClient c(ep.port);
  for (int i = 0; i < 5; ++i) job_id(c.post("/run", body_of_input_size(1000)));
  CHECK(in_queue(c) == 5);

  pe::Options parsed;
  CHECK(parsed.max_queued_bytes == std::size_t{1} << 30);
  CHECK(pe::parse_cli({"--max-queued-bytes", "4096"}, parsed).error.empty());
  CHECK(parsed.max_queued_bytes == 4096);
  CHECK_FALSE(pe::parse_cli({"--max-queued-bytes", "-1"}, parsed).error.empty());
  CHECK(pe::cli_help("endpoint").find("--max-queued-bytes") != std::string::npos);
}

TEST_CASE("queue cap: a /retry is never refused, it counts; new submits wait for room") {
  pe::Options o = fast_options();
  o.max_queued_bytes = 100;
  Endpoint ep(o);
  HttpClient c(ep.port);

  const std::string failed = job_id(c.post("/run", body_of_input_size(40)));
  take(c, "w1");
  c.post("/v2/local/job-done/w1/" + failed, R"({"error":"boom"})");
  REQUIRE(status_of(c, failed) == "FAILED");
  job_id(c.post("/run", body_of_input_size(60)));
  job_id(c.post("/run", body_of_input_size(40)));  // the queue is at its cap

  Response r = c.post("/retry/" + failed);
  CHECK(r.status == 200);
  CHECK(str(r.json(), "status") == "IN_QUEUE");
  r = c.post("/run", body_of_input_size(8));
  check_queue_full(r);
  CHECK(str(r.json(), "error").find("hold 140 bytes") != std::string::npos);
  CHECK(in_queue(c) == 3);
}

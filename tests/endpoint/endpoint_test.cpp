// The local endpoint over real HTTP on 127.0.0.1: each case starts a server on an ephemeral port
// with short timings, plays the client through the job API and the worker through the worker API.
#include <doctest/doctest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "endpoint_fixture.h"
#include "http_client.h"
#include "podworker/endpoint/server.h"
#include "podworker/json.h"
#include "thread_names.h"

using podworker::test::Endpoint;
using podworker::test::fast_options;
using podworker::test::job_id;
using podworker::test::kFormHeader;
using podworker::test::status_of;
using podworker::test::str;
using podworker::test::take;
using podworker::test::threads_named;

TEST_CASE("the endpoint's I/O threads carry a name (top -H, perf), one per --io-threads") {
  const std::size_t before = threads_named("pw-http-io");
  {
    pe::Options o = fast_options();
    o.io_threads = 3;
    Endpoint ep(o);
    // Each thread names itself as it starts: looked for until all have.
    CHECK(eventually([&] { return threads_named("pw-http-io") == before + 3; }));
  }
  CHECK(threads_named("pw-http-io") == before);
}

TEST_CASE("a job runs: run, status, job-take, progress, job-done, health") {
  Endpoint ep;
  HttpClient c(ep.port);

  Response r = c.post("/v2/local/run", R"({"input": {"prompt": "hello"}})", {{"Content-Type", "application/json"}});
  CHECK(r.content_type == "application/json");
  const std::string id = job_id(r);
  CHECK(str(r.json(), "status") == "IN_QUEUE");
  CHECK(status_of(c, id) == "IN_QUEUE");
  // Same job through the unprefixed routes of the default endpoint, and /status by POST.
  CHECK(str(c.post("/status/" + id).json(), "status") == "IN_QUEUE");

  pj::Document h = c.get("/v2/local/health").json();
  CHECK(h["jobs"]["inQueue"].GetInt() == 1);

  pj::Document job = take(c, "w1");
  CHECK(str(job, "id") == id);
  CHECK(str(job["input"], "prompt") == "hello");

  pj::Document st = c.get("/v2/local/status/" + id).json();
  CHECK(str(st, "status") == "IN_PROGRESS");
  CHECK(str(st, "workerId") == "w1");
  CHECK(st.HasMember("delayTime"));
  CHECK_FALSE(st.HasMember("output"));

  // Progress shows as output while running. The SDK labels bodies form-urlencoded: parsed as JSON.
  r = c.post("/v2/local/job-done/w1/" + id + "?gpu=x&isStream=false", R"({"status":"IN_PROGRESS","output":{"pct":50}})",
             kFormHeader);
  CHECK(r.status == 200);
  st = c.get("/v2/local/status/" + id).json();
  CHECK(str(st, "status") == "IN_PROGRESS");
  CHECK(st["output"]["pct"].GetInt() == 50);

  h = c.get("/health").json();
  CHECK(h["jobs"]["inProgress"].GetInt() == 1);
  CHECK(h["workers"]["running"].GetInt() == 1);

  r = c.post("/v2/local/job-done/w1/" + id + "?gpu=x&isStream=false", R"({"output":{"text":"hi"}})", kFormHeader);
  CHECK(r.status == 200);
  st = c.get("/v2/local/status/" + id).json();
  CHECK(str(st, "status") == "COMPLETED");
  CHECK(str(st["output"], "text") == "hi");
  CHECK(st["delayTime"].IsInt64());
  CHECK(st["executionTime"].IsInt64());
  CHECK(str(st, "workerId") == "w1");

  // A late progress update or a second result never overwrites a terminal state.
  r = c.post("/v2/local/job-done/w1/" + id, R"({"status":"IN_PROGRESS","output":{"pct":99}})", kFormHeader);
  CHECK(r.status == 200);
  r = c.post("/v2/local/job-done/w1/" + id, R"({"error":"late"})", kFormHeader);
  CHECK(r.status == 200);
  st = c.get("/v2/local/status/" + id).json();
  CHECK(str(st, "status") == "COMPLETED");
  CHECK(str(st["output"], "text") == "hi");

  c.get("/v2/local/ping/w1?job_id=&runpod_version=1.12.0");
  h = c.get("/v2/local/health").json();
  CHECK(h["jobs"]["completed"].GetInt() == 1);
  CHECK(h["jobs"]["inQueue"].GetInt() == 0);
  CHECK(h["jobs"]["inProgress"].GetInt() == 0);
  CHECK(h["workers"]["idle"].GetInt() == 1);
  CHECK(h["workers"]["running"].GetInt() == 0);
}

TEST_CASE("job-take: 204 when empty, batches, error results") {
  Endpoint ep;
  HttpClient c(ep.port);
  CHECK(c.get("/v2/local/job-take/w1?job_in_progress=0").status == 204);

  std::vector<std::string> ids;
  for (int i = 0; i < 3; ++i) ids.push_back(job_id(c.post("/v2/local/run", R"({"input":{"i":)" + std::to_string(i) + "}}")));
  Response r = c.get("/v2/local/job-take-batch/w1?gpu=x&job_in_progress=0&batch_size=2");
  REQUIRE(r.status == 200);
  pj::Document batch = r.json();
  REQUIRE(batch.IsArray());
  REQUIRE(batch.Size() == 2);
  CHECK(str(batch[0], "id") == ids[0]);  // first in, first out
  CHECK(str(batch[1], "id") == ids[1]);
  r = c.get("/v2/local/job-take-batch/w2?batch_size=5");
  REQUIRE(r.status == 200);
  REQUIRE(r.json().Size() == 1);
  CHECK(c.get("/v2/local/job-take-batch/w2?batch_size=5").status == 204);

  c.post("/v2/local/job-done/w1/" + ids[0], R"({"error":"boom","output":{"partial":1}})");
  pj::Document st = c.get("/status/" + ids[0]).json();
  CHECK(str(st, "status") == "FAILED");
  CHECK(str(st, "error") == "boom");
  // A completed job posted with no output at all is still COMPLETED (the SDK drops empty outputs).
  c.post("/v2/local/job-done/w1/" + ids[1], "{}");
  CHECK(status_of(c, ids[1]) == "COMPLETED");
  CHECK(c.post("/v2/local/job-done/w1/no-such-job", R"({"output":1})").status == 404);
  pj::Document h = c.get("/health").json();
  CHECK(h["jobs"]["failed"].GetInt() == 1);
  CHECK(h["jobs"]["completed"].GetInt() == 1);
  CHECK(h["jobs"]["inProgress"].GetInt() == 1);
}

TEST_CASE("runsync returns the finished job, or its id and status when ?wait= runs out") {
  Endpoint ep;
  HttpClient worker(ep.port);
  Response sync_reply;
  std::jthread client([&] {
    HttpClient c(ep.port);
    sync_reply = c.post("/v2/local/runsync?wait=20000", R"({"input":{"n":7}})");
  });
  pj::Document job = take(worker, "w1");
  const std::string id = str(job, "id");
  CHECK(id.rfind("sync-", 0) == 0);
  CHECK(worker.post("/v2/local/job-done/w1/" + id + "?isStream=false", R"({"output":{"n2":49}})").status == 200);
  client.join();
  REQUIRE(sync_reply.status == 200);
  pj::Document st = sync_reply.json();
  CHECK(str(st, "id") == id);
  CHECK(str(st, "status") == "COMPLETED");
  CHECK(st["output"]["n2"].GetInt() == 49);

  // Nobody takes this one: after the (clamped, here 1 ms) wait the client gets id and status.
  Response r = worker.post("/runsync?wait=1", R"({"input":{}})");
  REQUIRE(r.status == 200);
  pj::Document pending = r.json();
  CHECK(str(pending, "status") == "IN_QUEUE");
  CHECK(str(pending, "id").rfind("sync-", 0) == 0);
  CHECK_FALSE(pending.HasMember("output"));
  CHECK(worker.post("/runsync?wait=soon", R"({"input":{}})").status == 400);
}

TEST_CASE("stream: JSON polls return only undelivered chunks") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  take(c, "w1");
  CHECK(c.post("/v2/local/job-stream/w1/" + id + "?gpu=x&isStream=false", R"({"output":"a"})", kFormHeader).status == 200);
  CHECK(c.post("/v2/local/job-stream/w1/" + id, R"({"output":{"b":2}})").status == 200);

  pj::Document s = c.get("/v2/local/stream/" + id).json();
  CHECK(str(s, "status") == "IN_PROGRESS");
  REQUIRE(s["stream"].Size() == 2);
  CHECK(str(s["stream"][0], "output") == "a");
  CHECK(s["stream"][1]["output"]["b"].GetInt() == 2);

  s = c.post("/v2/local/stream/" + id).json();  // nothing new: empty after the short long poll
  CHECK(s["stream"].Size() == 0);

  c.post("/v2/local/job-stream/w1/" + id, R"({"output":"c"})");
  s = c.get("/stream/" + id).json();
  REQUIRE(s["stream"].Size() == 1);
  CHECK(str(s["stream"][0], "output") == "c");

  c.post("/v2/local/job-done/w1/" + id + "?isStream=true", R"({"output":[]})");
  s = c.get("/v2/local/stream/" + id).json();
  CHECK(str(s, "status") == "COMPLETED");
  CHECK(s["stream"].Size() == 0);
  CHECK(c.get("/v2/local/stream/nope").status == 404);
}

TEST_CASE("stream: Server-Sent Events deliver chunks live until the job ends") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  take(c, "w1");
  SseReader sse(ep.port, "/v2/local/stream/" + id);
  c.post("/v2/local/job-stream/w1/" + id, R"({"output":"first"})");
  REQUIRE(sse.wait_for(R"(data: {"output":"first"})"));
  CHECK(sse.text().find("Content-Type: text/event-stream") != std::string::npos);
  c.post("/v2/local/job-stream/w1/" + id, R"({"output":"second"})");
  REQUIRE(sse.wait_for(R"(data: {"output":"second"})"));
  c.post("/v2/local/job-done/w1/" + id + "?isStream=true", R"({"output":["first","second"]})");
  const std::string all = sse.finish();
  const auto done = all.find("event: done\ndata: ");
  REQUIRE(done != std::string::npos);
  CHECK(all.find("\"status\":\"COMPLETED\"", done) != std::string::npos);
  CHECK(all.find("first") < all.find("second"));
}

TEST_CASE("cancel: a queued job is removed, a running one is stopped through job-stop") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string queued = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  Response r = c.post("/v2/local/cancel/" + queued);
  CHECK(str(r.json(), "id") == queued);
  CHECK(str(r.json(), "status") == "CANCELLED");
  CHECK(status_of(c, queued) == "CANCELLED");
  CHECK(c.get("/v2/local/job-take/w1").status == 204);  // never handed out

  const std::string running = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  take(c, "w1");
  CHECK(c.get("/v2/local/job-stop/w1").status == 204);
  CHECK(str(c.post("/cancel/" + running).json(), "status") == "CANCELLED");
  r = c.get("/v2/local/job-stop/w1?gpu=x&job_in_progress=1");
  REQUIRE(r.status == 200);
  pj::Document stop = r.json();
  REQUIRE(stop["jobsToStop"].Size() == 1);
  CHECK(stop["jobsToStop"][0].GetString() == running);
  CHECK(c.get("/v2/local/job-stop/w1").status == 204);  // delivered once
  // The worker's result arriving anyway changes nothing.
  CHECK(c.post("/v2/local/job-done/w1/" + running, R"({"output":1})").status == 200);
  CHECK(status_of(c, running) == "CANCELLED");
  // Cancelling an ended job reports its state; an unknown one is 404.
  CHECK(str(c.post("/v2/local/cancel/" + running).json(), "status") == "CANCELLED");
  CHECK(c.post("/v2/local/cancel/nope").status == 404);
}

// The runpod SDK drops a stop request that arrives before it has registered the job it just took;
// the worker's pings (and job-takes while it holds jobs) get the stop announced again.
TEST_CASE("stop re-announcement: a job a worker still reports after it ended is announced again") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  take(c, "w1");
  CHECK(str(c.post("/v2/local/cancel/" + id).json(), "status") == "CANCELLED");
  auto stops = [&](const std::string& worker) {
    std::vector<std::string> ids;
    Response r = c.get("/v2/local/job-stop/" + worker + "?gpu=x");
    if (r.status == 204) return ids;
    REQUIRE(r.status == 200);
    pj::Document d = r.json();
    for (const auto& v : d["jobsToStop"].GetArray()) ids.emplace_back(v.GetString());
    return ids;
  };
  CHECK(stops("w1") == std::vector<std::string>{id});  // the answer the SDK drops
  CHECK(stops("w1").empty());

  // The worker still reports the job: announced again, once per ping however many pings came.
  CHECK(c.get("/v2/local/ping/w1?job_id=" + id + "&runpod_version=1.12.0").status == 200);
  CHECK(c.get("/v2/local/ping/w1?job_id=" + id + "&runpod_version=1.12.0").status == 200);
  CHECK(stops("w1") == std::vector<std::string>{id});
  CHECK(stops("w1").empty());

  // A job-take while holding jobs re-announces a stop the worker has not been seen to act on.
  CHECK(c.get("/v2/local/job-take/w1?gpu=x&job_in_progress=1").status == 204);
  CHECK(stops("w1") == std::vector<std::string>{id});
  // A ping without the job means the worker dropped it: job-take no longer re-announces it.
  c.get("/v2/local/ping/w1?runpod_version=1.12.0");
  CHECK(c.get("/v2/local/job-take/w1?gpu=x&job_in_progress=1").status == 204);
  CHECK(stops("w1").empty());

  // A job running on this worker is never stopped; one that belongs to another worker, or that
  // no longer exists, is; the other worker is not disturbed.
  const std::string mine = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  take(c, "w1");
  const std::string theirs = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  take(c, "w2");
  c.get("/v2/local/ping/w1?job_id=" + mine + "," + theirs + ",no-such-job");
  CHECK(stops("w1") == std::vector<std::string>{theirs, "no-such-job"});
  c.get("/v2/local/ping/w2?job_id=" + theirs);
  CHECK(stops("w2").empty());
  CHECK(status_of(c, mine) == "IN_PROGRESS");
  CHECK(status_of(c, theirs) == "IN_PROGRESS");
}

TEST_CASE("executionTimeout ends a job as TIMED_OUT; retry requeues it") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{},"policy":{"executionTimeout":30}})"));
  take(c, "w1");
  REQUIRE(eventually([&] { return status_of(c, id) == "TIMED_OUT"; }));
  Response r = c.get("/v2/local/job-stop/w1");
  REQUIRE(r.status == 200);
  CHECK(r.json()["jobsToStop"][0].GetString() == id);

  r = c.post("/v2/local/retry/" + id);
  REQUIRE(r.status == 200);
  CHECK(str(r.json(), "status") == "IN_QUEUE");
  CHECK(status_of(c, id) == "IN_QUEUE");
  pj::Document job = take(c, "w2");
  CHECK(str(job, "id") == id);
  c.post("/v2/local/job-done/w2/" + id, R"({"output":"ok"})");
  CHECK(status_of(c, id) == "COMPLETED");
  CHECK(c.post("/v2/local/retry/" + id).status == 400);  // only FAILED or TIMED_OUT
  CHECK(c.post("/v2/local/retry/nope").status == 404);
}

TEST_CASE("policy.ttl: the job is gone after it, in the queue or running") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string queued = job_id(c.post("/v2/local/run", R"({"input":{},"policy":{"ttl":40}})"));
  REQUIRE(eventually([&] { return c.get("/v2/local/status/" + queued).status == 404; }));
  CHECK(c.get("/v2/local/job-take/w1").status == 204);

  const std::string running = job_id(c.post("/v2/local/run", R"({"input":{},"policy":{"ttl":1000}})"));
  take(c, "w1");
  REQUIRE(eventually([&] { return c.get("/v2/local/status/" + running).status == 404; }));
  Response r = c.get("/v2/local/job-stop/w1");
  REQUIRE(r.status == 200);
  CHECK(r.json()["jobsToStop"][0].GetString() == running);
}

TEST_CASE("retention: results are kept for a while after the end, then 404") {
  pe::Options o = fast_options();
  o.retention = 500ms;
  o.runsync_retention = 50ms;
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  take(c, "w1");
  c.post("/v2/local/job-done/w1/" + id, R"({"output":1})");
  CHECK(c.get("/v2/local/status/" + id).status == 200);
  REQUIRE(eventually([&] { return c.get("/v2/local/status/" + id).status == 404; }));

  Response sync_reply;
  std::jthread client([&] {
    HttpClient cc(ep.port);
    sync_reply = cc.post("/v2/local/runsync", R"({"input":{}})");
  });
  const std::string sid = str(take(c, "w1"), "id");
  c.post("/v2/local/job-done/w1/" + sid, R"({"output":2})");
  client.join();
  CHECK(str(sync_reply.json(), "status") == "COMPLETED");
  REQUIRE(eventually([&] { return c.get("/v2/local/status/" + sid).status == 404; }));
}

TEST_CASE("purge-queue removes queued jobs only") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string a = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  take(c, "w1");
  const std::string b = job_id(c.post("/v2/local/run", R"({"input":{}})"));
  const std::string d = job_id(c.post("/v2/local/run", R"({"input":{},"policy":{"lowPriority":true}})"));
  Response r = c.post("/v2/local/purge-queue");
  REQUIRE(r.status == 200);
  CHECK(r.json()["removed"].GetInt() == 2);
  CHECK(str(r.json(), "status") == "completed");
  CHECK(status_of(c, a) == "IN_PROGRESS");
  CHECK(c.get("/v2/local/status/" + b).status == 404);
  CHECK(c.get("/v2/local/status/" + d).status == 404);
  CHECK(c.get("/v2/local/job-take/w2").status == 204);
  CHECK(c.get("/v2/local/purge-queue").status == 405);
}

TEST_CASE("webhook: the status JSON is POSTed when the job ends, retried after a failure") {
  WebhookReceiver receiver({500});  // first attempt fails, the retry succeeds
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string hook = "http://127.0.0.1:" + std::to_string(receiver.port()) + "/hook?x=1";
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{},"webhook":")" + hook + "\"}"));
  pj::Document job = take(c, "w1");
  CHECK(str(job, "webhook") == hook);
  c.post("/v2/local/job-done/w1/" + id, R"({"output":{"answer":42}})");
  const auto bodies = receiver.wait_for_requests(2);
  REQUIRE(bodies.size() == 2);
  for (const auto& body : bodies) {
    pj::Document st = pj::parse(body);
    CHECK(str(st, "id") == id);
    CHECK(str(st, "status") == "COMPLETED");
    CHECK(st["output"]["answer"].GetInt() == 42);
  }
}

TEST_CASE("heartbeat loss: jobs of a silent worker are requeued, then FAILED at the retry limit") {
  pe::Options o = fast_options();
  o.heartbeat_grace = 500ms;
  o.retry_limit = 1;
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string lost = job_id(c.post("/v2/local/run", R"({"input":{"j":1}})"));
  const std::string kept = job_id(c.post("/v2/local/run", R"({"input":{"j":2}})"));
  CHECK(str(take(c, "silent"), "id") == lost);
  CHECK(str(take(c, "alive"), "id") == kept);

  // "alive" keeps pinging; "silent" says nothing.
  REQUIRE(eventually([&] {
    c.get("/v2/local/ping/alive?job_id=" + kept + "&runpod_version=1.12.0");
    return status_of(c, lost) == "IN_QUEUE";
  }));
  CHECK(status_of(c, kept) == "IN_PROGRESS");
  pj::Document h = c.get("/v2/local/health").json();
  CHECK(h["jobs"]["retried"].GetInt() == 1);

  pj::Document again = take(c, "silent2");
  CHECK(str(again, "id") == lost);
  CHECK(again["input"]["j"].GetInt() == 1);
  REQUIRE(eventually([&] {
    c.get("/v2/local/ping/alive?job_id=" + kept);
    return status_of(c, lost) == "FAILED";
  }));
  pj::Document st = c.get("/v2/local/status/" + lost).json();
  CHECK(str(st, "error").find("heartbeat") != std::string::npos);
  CHECK(status_of(c, kept) == "IN_PROGRESS");
  CHECK(c.get("/v2/local/health").json()["jobs"]["retried"].GetInt() == 1);
}

TEST_CASE("auth: 401 without the key; Bearer or bare key accepted, worker routes too") {
  pe::Options o = fast_options();
  o.api_key = "s3cret-key";
  Endpoint ep(o);
  HttpClient c(ep.port);
  CHECK(c.get("/v2/local/health").status == 401);
  CHECK(c.get("/v2/local/health", {{"Authorization", "Bearer wrong"}}).status == 401);
  CHECK(c.get("/v2/local/health", {{"Authorization", "Bearer s3cret-ke"}}).status == 401);
  CHECK(c.get("/v2/local/health", {{"Authorization", "Bearer s3cret-keyy"}}).status == 401);
  CHECK(c.get("/v2/local/health", {{"Authorization", "Bearer s3cret-key"}}).status == 200);
  CHECK(c.get("/v2/local/health", {{"Authorization", "s3cret-key"}}).status == 200);
  CHECK(c.post("/v2/local/run", R"({"input":{}})").status == 401);
  CHECK(c.get("/v2/local/job-take/w1").status == 401);
  CHECK(c.get("/v2/local/job-take/w1", {{"Authorization", "s3cret-key"}}).status == 204);
}

TEST_CASE("rate limits: 429 over the request and the concurrency limit") {
  pe::Options o = fast_options();
  o.rate_limit = true;
  o.rate_window = 60s;
  o.limits.run = {3, 0};
  o.limits.runsync = {0, 1};
  Endpoint ep(o);
  HttpClient c(ep.port);
  for (int i = 0; i < 3; ++i) CHECK(c.post("/v2/local/run", R"({"input":{}})").status == 200);
  CHECK(c.post("/v2/local/run", R"({"input":{}})").status == 429);
  CHECK(c.get("/v2/local/health").status == 200);  // other routes are not affected
  c.post("/v2/local/purge-queue");

  Response first;
  std::jthread client([&] {
    HttpClient cc(ep.port);
    first = cc.post("/v2/local/runsync?wait=20000", R"({"input":{}})");
  });
  const std::string id = str(take(c, "w1"), "id");  // the runsync is now in flight
  CHECK(c.post("/v2/local/runsync", R"({"input":{}})").status == 429);
  c.post("/v2/local/job-done/w1/" + id, R"({"output":1})");
  client.join();
  CHECK(first.status == 200);
  CHECK(c.post("/v2/local/runsync?wait=1", R"({"input":{}})").status == 200);  // the slot is free again
}

TEST_CASE("bad input: 413, 400, 404, 405, and no bad request disturbs a queued job") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string id = job_id(c.post("/v2/local/run", R"({"input":{"keep":"me"}})"));

  const std::string big_run(10 * 1024 * 1024 + 1, ' ');
  Response r = c.post("/v2/local/run", big_run);
  CHECK(r.status == 413);
  CHECK(r.json().HasMember("error"));
  const std::string ok_runsync_size = R"({"input":{"pad":")" + std::string(10 * 1024 * 1024, 'x') + "\"}}";
  CHECK(c.post("/v2/local/runsync?wait=1", ok_runsync_size).status == 200);  // > 10 MB is fine here
  const std::string big_runsync(20 * 1024 * 1024 + 1, ' ');
  CHECK(c.post("/v2/local/runsync", big_runsync).status == 413);

  for (const char* body : {"{not json", "", "[1,2]", R"({"inputs":{}})", R"({"input":5})", R"({"input":"text"})",
                           R"({"input":{},"webhook":7})", R"({"input":{},"webhook":"example.test/hook"})",
                           R"({"input":{},"webhook":"http://a b"})", R"({"input":{},"policy":3})",
                           R"({"input":{},"policy":{"ttl":"soon"}})", R"({"input":{}} trailing)"}) {
    CAPTURE(body);
    r = c.post("/v2/local/run", body);
    CHECK(r.status == 400);
    CHECK_FALSE(str(r.json(), "error").empty());
  }
  CHECK(c.post("/v2/local/runsync", "{bad").status == 400);
  CHECK(c.post("/v2/local/job-done/w9/" + id, "{bad").status == 400);
  CHECK(c.post("/v2/local/job-stream/w9/" + id, "nope").status == 400);

  CHECK(c.get("/v2/other/health").status == 404);
  CHECK(c.post("/v2/other/run", R"({"input":{}})").status == 404);
  CHECK(c.get("/v2/local/nothing").status == 404);
  CHECK(c.get("/v2/local/status").status == 404);
  CHECK(c.get("/v2/local/status/a/b").status == 404);
  CHECK(c.get("/v2/local/status/unknown-id").status == 404);
  CHECK(c.get("/v2/local/").status == 404);  // "/" is the dashboard; not under an endpoint id

  r = c.get("/v2/local/run");
  CHECK(r.status == 405);
  CHECK(r.allow == "POST");
  CHECK(c.post("/v2/local/health").status == 405);
  CHECK(c.request("DELETE", "/v2/local/status/" + id).status == 405);
  CHECK(c.post("/v2/local/job-take/w1").status == 405);

  // The job queued first is untouched: still queued, input intact, and handed out once.
  CHECK(status_of(c, id) == "IN_QUEUE");
  pj::Document job = take(c, "w1");
  CHECK(str(job, "id") == id);
  CHECK(str(job["input"], "keep") == "me");
}

TEST_CASE("several endpoint ids: separate queues, the first is the default") {
  pe::Options o = fast_options();
  o.endpoint_ids = {"alpha", "beta"};
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string a = job_id(c.post("/v2/alpha/run", R"({"input":{}})"));
  CHECK(c.get("/v2/beta/status/" + a).status == 404);
  CHECK(c.get("/status/" + a).status == 200);  // unprefixed = alpha
  CHECK(c.get("/v2/local/health").status == 404);
  CHECK(c.get("/v2/beta/job-take/w1").status == 204);
  CHECK(str(take(c, "w1", "/v2/alpha"), "id") == a);
}

TEST_CASE("stop() ends long polls and returns") {
  pe::Options o = fast_options();
  o.take_wait = 60s;
  auto ep = std::make_unique<Endpoint>(o);
  std::atomic<int> status{-1};
  std::jthread poller([&] {
    HttpClient c(ep->port);
    try {
      status = c.get("/v2/local/job-take/w1").status;
    } catch (const std::exception&) {
      status = 0;  // connection closed: also an end
    }
  });
  HttpClient c(ep->port);
  REQUIRE(eventually([&] { return c.get("/health").json()["workers"]["idle"].GetInt() == 1; }));
  ep->server.stop();
  poller.join();
  CHECK(status.load() != -1);
  CHECK((status.load() == 204 || status.load() == 0));
}

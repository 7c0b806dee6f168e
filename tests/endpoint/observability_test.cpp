// What the endpoint shows operators: /metrics (Prometheus text, behind the key), the dashboard and
// docs pages and their files (public, with a content security policy), /recent-jobs, and the
// MeteredStore decorator's job accounting, driven by a fake clock so no test sleeps. The scrapes
// are parsed by the official Python parser in tests/compat/test_metrics.py.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "endpoint_fixture.h"
#include "fake_clock.h"
#include "memory_store.h"
#include "metered_store.h"
#include "podworker/metrics.h"

using namespace podworker::test;

namespace {

// A scrape's value for one exact sample line prefix ("name{labels}"); -1 when absent.
double sample(const std::string& text, const std::string& series) {
  const std::string needle = "\n" + series + " ";
  const auto at = ("\n" + text).find(needle);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + needle.size() - 1));
}

using podworker::test::FakeClock;

struct Metered {
  Metered() {
    pe::StoreOptions o;
    o.clock = clock;
    o.heartbeat_grace = 5s;
    o.retry_limit = 0;
    store = std::make_unique<pe::MeteredStore>(std::make_unique<pe::MemoryStore>(o, nullptr),
                                               registry, "local", clock);
  }
  void submit(const std::string& id, std::chrono::milliseconds timeout = 60s) {
    pe::NewJob job;
    job.id = id;
    job.input_json = R"({"n":1})";
    job.policy.execution_timeout = timeout;
    REQUIRE(store->submit(std::move(job)).accepted);
  }
  void take(std::size_t n = 1) {
    store->worker_begin("w");
    REQUIRE(store->take("w", n).size() == n);
  }
  pe::PostOutcome done(const std::string& id, bool error = false) {
    pe::WorkerResult r;
    r.kind = error ? pe::WorkerResult::Kind::error : pe::WorkerResult::Kind::output;
    if (error) r.error = "boom";
    r.output_json = error ? "" : "1";
    return store->post_result("w", id, std::move(r));
  }
  double value(const std::string& series) const { return sample(registry.render(), series); }

  std::shared_ptr<FakeClock> clock = std::make_shared<FakeClock>();
  podworker::metrics::Registry registry;
  std::unique_ptr<pe::MeteredStore> store;
};

constexpr const char* kCompleted =
    R"(podworker_endpoint_jobs_finished_total{endpoint="local",status="COMPLETED"})";
constexpr const char* kFailed =
    R"(podworker_endpoint_jobs_finished_total{endpoint="local",status="FAILED"})";
constexpr const char* kCancelled =
    R"(podworker_endpoint_jobs_finished_total{endpoint="local",status="CANCELLED"})";
constexpr const char* kTimedOut =
    R"(podworker_endpoint_jobs_finished_total{endpoint="local",status="TIMED_OUT"})";

}  // namespace

TEST_CASE("metered store: delay and execution come from the store's clock; each job ends once") {
  Metered m;
  m.submit("a");
  m.clock->advance(250ms);
  m.take();
  m.clock->advance(2s);
  CHECK(m.done("a") == pe::PostOutcome::accepted);
  CHECK(m.value(R"(podworker_endpoint_job_delay_seconds_sum{endpoint="local"})") ==
        doctest::Approx(0.25));
  CHECK(m.value(R"(podworker_endpoint_job_execution_seconds_sum{endpoint="local"})") ==
        doctest::Approx(2.0));
  CHECK(m.value(R"(podworker_endpoint_job_execution_seconds_bucket{endpoint="local",le="1"})") ==
        0);
  CHECK(m.value(R"(podworker_endpoint_job_execution_seconds_bucket{endpoint="local",le="2.5"})") ==
        1);
  CHECK(m.value(kCompleted) == 1);
  // A second post for the ended job is ignored by the store and counted nowhere.
  CHECK(m.done("a") == pe::PostOutcome::ignored);
  CHECK(m.value(kCompleted) == 1);

  m.submit("b");
  m.take();
  CHECK(m.done("b", true) == pe::PostOutcome::accepted);
  CHECK(m.value(kFailed) == 1);
  CHECK(m.value(R"(podworker_endpoint_jobs_submitted_total{endpoint="local"})") == 2);
  CHECK(m.value(R"(podworker_endpoint_store_operations_total{endpoint="local",op="submit"})") == 2);
  CHECK(
      m.value(R"(podworker_endpoint_store_operations_total{endpoint="local",op="post_result"})") ==
      3);
}

TEST_CASE(
    "metered store: cancels count once, timeouts decided in the sweep are found and counted") {
  Metered m;
  m.submit("c");
  CHECK(m.store->cancel("c") == pe::JobStatus::cancelled);
  CHECK(m.store->cancel("c") == pe::JobStatus::cancelled);
  CHECK(m.value(kCancelled) == 1);

  m.submit("t", 1s);
  m.take();
  m.clock->advance(1500ms);
  m.store->sweep();  // the store times the job out; the decorator asks how it ended
  CHECK(m.store->status("t")->status == pe::JobStatus::timed_out);
  CHECK(m.value(kTimedOut) == 1);
  m.clock->advance(2s);
  m.store->sweep();
  CHECK(m.value(kTimedOut) == 1);

  CHECK(m.store->retry("t") == pe::RetryOutcome::requeued);
  CHECK(m.value(R"(podworker_endpoint_jobs_retried_total{endpoint="local"})") == 1);
  m.take();
  CHECK(m.done("t") == pe::PostOutcome::accepted);
  CHECK(m.value(kCompleted) == 1);
}

TEST_CASE("metered store: health feeds the gauges; a lost worker's requeue is counted") {
  Metered m;
  m.submit("q1");
  m.submit("q2");
  m.store->collect();
  CHECK(m.value(R"(podworker_endpoint_queue_depth{endpoint="local"})") == 2);
  CHECK(m.value(R"(podworker_endpoint_queued_bytes{endpoint="local"})") == 14);
  m.take();
  m.store->collect();
  CHECK(m.value(R"(podworker_endpoint_jobs{endpoint="local",state="IN_QUEUE"})") == 1);
  CHECK(m.value(R"(podworker_endpoint_jobs{endpoint="local",state="IN_PROGRESS"})") == 1);
  CHECK(m.value(R"(podworker_endpoint_workers{endpoint="local",state="running"})") == 1);
  CHECK(m.value(R"(podworker_endpoint_queued_bytes{endpoint="local"})") == 7);
  CHECK(m.store->purge_queue() == 1);
  CHECK(m.value(R"(podworker_endpoint_queued_bytes{endpoint="local"})") == 0);
  // The holder goes silent past the grace: retry_limit 0 fails the job at once.
  m.clock->advance(6s);
  m.store->sweep();
  m.clock->advance(61s);  // past the job's executionTimeout: the decorator looks it up
  m.store->sweep();
  CHECK(m.value(kFailed) == 1);
  const auto recent = m.store->recent_jobs();
  REQUIRE(recent.size() == 2);
  CHECK(recent.front() == "q2");
}

TEST_CASE("observability: /metrics needs the key; pages and their files do not") {
  pe::Options o = fast_options();
  o.api_key = "k";
  Endpoint ep(o);
  HttpClient c(ep.port);
  const Headers key{{"Authorization", "Bearer k"}};
  CHECK(c.get("/metrics").status == 401);
  CHECK(c.get("/recent-jobs").status == 401);
  CHECK(c.post("/run", R"({"input":{"x":1}})", key).status == 200);
  const Response m = c.get("/metrics", key);
  REQUIRE(m.status == 200);
  CHECK(m.content_type == "text/plain; version=0.0.4; charset=utf-8");
  CHECK(sample(m.body, R"(podworker_endpoint_jobs_submitted_total{endpoint="local"})") == 1);
  CHECK(sample(m.body, R"(podworker_endpoint_http_requests_total{route="metrics",code="401"})") ==
        1);
  CHECK(sample(m.body, R"(podworker_endpoint_http_requests_total{route="run",code="200"})") == 1);
  CHECK(m.body.find("# TYPE podworker_endpoint_job_delay_seconds histogram\n") !=
        std::string::npos);

  const Response page = c.get("/");
  CHECK(page.status == 200);
  CHECK(page.content_type == "text/html; charset=utf-8");
  CHECK(page.body.find("/static/dashboard.js") != std::string::npos);
  CHECK(c.get("/docs").body.find("/static/docs.js") != std::string::npos);
  CHECK(c.get("/static/dashboard.js").content_type == "text/javascript; charset=utf-8");
  CHECK(c.get("/static/docs.js").status == 200);
  CHECK(c.get("/static/podworker.css").content_type == "text/css; charset=utf-8");
  CHECK(c.get("/static/nothing.js").status == 404);
  CHECK(c.get("/static/../openapi.json", key).status == 404);  // no route: a file is one segment
  CHECK(c.post("/").status == 405);
}

TEST_CASE("observability: /recent-jobs lists the last jobs, newest first, with their times") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string first = job_id(c.post("/run", R"({"input":{"n":1}})"));
  const std::string second = job_id(c.post("/run", R"({"input":{"n":2}})"));
  pj::Document taken = take(c, "w1");
  CHECK(str(taken, "id") == first);
  REQUIRE(c.post("/v2/local/job-done/w1/" + first, R"({"output":"ok"})").status == 200);
  const pj::Document list = c.get("/recent-jobs").json();
  const auto& jobs = list["jobs"];
  REQUIRE(jobs.Size() == 2);
  CHECK(str(jobs[0], "id") == second);
  CHECK(str(jobs[0], "status") == "IN_QUEUE");
  CHECK(str(jobs[1], "id") == first);
  CHECK(str(jobs[1], "status") == "COMPLETED");
  CHECK(jobs[1]["executionTime"].IsInt64());
  CHECK(str(jobs[1], "workerId") == "w1");
  CHECK(!jobs[1].HasMember("output"));
}

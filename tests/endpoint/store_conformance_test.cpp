// The rules of the job store, stated against the JobStore interface: the state machine, ownership
// of a job by its lease holder, heartbeat and listing requeues, retention, TTL, executionTimeout,
// the stop channel, stream cursors and the one-wake-per-job queue watch. A fake clock drives time,
// so nothing here sleeps. Another implementation runs the same suite by adding its factory to
// JOB_STORES.
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "fake_clock.h"
#include "memory_store.h"
#include "podworker/json.h"
#ifdef PODWORKER_STORE_CONFORMANCE_REDIS
#include "redis_store_factory.h"
#endif

namespace pe = podworker::endpoint;
namespace pj = podworker::json;
using namespace std::chrono_literals;

namespace {

using podworker::test::FakeClock;

struct MemoryStoreFactory {
  static std::unique_ptr<pe::JobStore> make(pe::StoreOptions options, std::function<void(pe::TerminalEvent)> sink) {
    return std::make_unique<pe::MemoryStore>(std::move(options), std::move(sink));
  }
};

#ifdef PODWORKER_STORE_CONFORMANCE_REDIS
#define JOB_STORES RedisStoreFactory  // redis_store_factory.h: the same cases on a fresh Redis database
#else
#define JOB_STORES MemoryStoreFactory
#endif

pe::StoreOptions test_options() {
  pe::StoreOptions o;
  o.retention = 10s;
  o.runsync_retention = 2s;
  o.heartbeat_grace = 5s;
  o.retry_limit = 2;
  return o;
}

template <class Factory>
struct Harness {
  explicit Harness(pe::StoreOptions o = test_options()) {
    o.clock = clock;
    store = Factory::make(std::move(o), [this](pe::TerminalEvent e) { events.push_back(std::move(e)); });
  }
  void submit(const std::string& id, pe::Policy policy = {}, bool sync = false, std::string webhook = {}) {
    REQUIRE(try_submit(id, policy, sync, std::move(webhook)).accepted);
  }
  pe::SubmitResult try_submit(const std::string& id, pe::Policy policy = {}, bool sync = false,
                              std::string webhook = {}) {
    pe::NewJob job;
    job.id = id;
    job.input_json = R"({"n":1})";
    job.policy = policy;
    job.sync = sync;
    job.webhook = std::move(webhook);
    return store->submit(std::move(job));
  }
  // One take by `worker`, as a worker request brackets it.
  std::vector<pe::TakenJob> take(const std::string& worker, std::size_t n = 1) {
    store->worker_begin(worker);
    auto jobs = store->take(worker, n);
    return jobs;
  }
  std::string take_one(const std::string& worker) {
    auto jobs = take(worker);
    REQUIRE(jobs.size() == 1);
    return jobs.front().id;
  }
  void advance(std::chrono::milliseconds d) {
    clock->advance(d);
    store->sweep();
  }
  std::string status(const std::string& id) {
    auto snap = store->status(id);
    return snap ? std::string(pe::status_name(snap->status)) : "GONE";
  }
  pj::Document status_doc(const std::string& id) {
    auto snap = store->status(id);
    REQUIRE(snap);
    return pj::parse(pe::render_status(*snap));
  }
  pe::PostOutcome done(const std::string& worker, const std::string& id, std::string output = R"("ok")") {
    pe::WorkerResult r;
    r.output_json = std::move(output);
    return store->post_result(worker, id, std::move(r));
  }
  pe::PostOutcome progress(const std::string& worker, const std::string& id, std::string output) {
    pe::WorkerResult r;
    r.kind = pe::WorkerResult::Kind::progress;
    r.output_json = std::move(output);
    return store->post_result(worker, id, std::move(r));
  }
  std::vector<std::string> chunks_from(const std::string& id, std::size_t& cursor) {
    auto batch = store->read_stream(id, cursor);
    REQUIRE(batch);
    cursor = batch->next;
    return batch->chunks;
  }

  std::shared_ptr<FakeClock> clock = std::make_shared<FakeClock>();
  std::vector<pe::TerminalEvent> events;
  std::unique_ptr<pe::JobStore> store;
};

using Strings = std::vector<std::string>;

}  // namespace

TEST_CASE_TEMPLATE("store: IN_QUEUE -> IN_PROGRESS -> COMPLETED; a terminal state is final", F, JOB_STORES) {
  Harness<F> h;
  h.submit("j1", {}, false, "http://hook/x");
  CHECK(h.status("j1") == "IN_QUEUE");
  CHECK(h.store->health().in_queue == 1);
  h.clock->advance(250ms);
  const auto taken = h.take("w1");
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].id == "j1");
  CHECK(taken[0].input_json == R"({"n":1})");
  CHECK(pj::to_string(pj::parse(pe::render_taken(taken[0]))["input"]) == R"({"n":1})");
  CHECK(h.status("j1") == "IN_PROGRESS");
  CHECK(pj::get_string(h.status_doc("j1"), "workerId") == "w1");
  CHECK(pj::get_int(h.status_doc("j1"), "delayTime", -1) == 250);
  CHECK(h.progress("w1", "j1", R"("half")") == pe::PostOutcome::accepted);
  CHECK(pj::to_string(h.status_doc("j1")["output"]) == R"("half")");
  h.clock->advance(100ms);
  CHECK(h.done("w1", "j1", R"({"x":1})") == pe::PostOutcome::accepted);
  const auto doc = h.status_doc("j1");
  CHECK(pj::get_string(doc, "status") == "COMPLETED");
  CHECK(pj::to_string(doc["output"]) == R"({"x":1})");
  CHECK(pj::get_int(doc, "executionTime", -1) == 100);
  REQUIRE(h.events.size() == 1);
  CHECK(h.events[0].job.id == "j1");
  CHECK(h.events[0].webhook == "http://hook/x");
  CHECK(h.events[0].job.status == pe::JobStatus::completed);
  CHECK(h.events[0].job.output_json == R"({"x":1})");
  // The holder's late posts change nothing.
  CHECK(h.done("w1", "j1", R"("again")") == pe::PostOutcome::ignored);
  CHECK(h.progress("w1", "j1", R"("late")") == pe::PostOutcome::ignored);
  CHECK(h.store->post_stream("w1", "j1", R"("late")") == pe::PostOutcome::ignored);
  CHECK(pj::to_string(h.status_doc("j1")["output"]) == R"({"x":1})");
  CHECK(h.events.size() == 1);
  CHECK(h.done("w1", "nope") == pe::PostOutcome::not_found);
  CHECK(h.store->health().completed == 1);
}

TEST_CASE_TEMPLATE("store: only the lease holder posts for a job; everything else is refused and changes nothing", F,
                   JOB_STORES) {
  Harness<F> h;
  h.submit("first");
  h.submit("held");
  CHECK(h.take_one("w1") == "first");
  CHECK(h.take_one("w1") == "held");
  h.submit("waiting");

  // A worker that never took the job.
  CHECK(h.done("intruder", "held") == pe::PostOutcome::refused);
  CHECK(h.progress("intruder", "held", R"("p")") == pe::PostOutcome::refused);
  CHECK(h.store->post_stream("intruder", "held", R"("c")") == pe::PostOutcome::refused);
  pe::WorkerResult error;
  error.kind = pe::WorkerResult::Kind::error;
  error.error = "boom";
  CHECK(h.store->post_result("intruder", "held", error) == pe::PostOutcome::refused);
  const auto doc = h.status_doc("held");
  CHECK(pj::get_string(doc, "status") == "IN_PROGRESS");
  CHECK(pj::get_string(doc, "workerId") == "w1");
  CHECK_FALSE(doc.HasMember("output"));
  std::size_t cursor = 0;
  CHECK(h.chunks_from("held", cursor).empty());

  // A job still queued: no one holds it, so no one may finish it; it still runs.
  CHECK(h.done("w1", "waiting") == pe::PostOutcome::refused);
  CHECK(h.status("waiting") == "IN_QUEUE");
  CHECK(h.take_one("w2") == "waiting");
  CHECK(h.done("w2", "waiting") == pe::PostOutcome::accepted);
  CHECK(h.status("waiting") == "COMPLETED");

  // Nor may another worker touch a job after it ended.
  CHECK(h.done("w1", "first") == pe::PostOutcome::accepted);
  CHECK(h.done("w2", "first", R"("other")") == pe::PostOutcome::refused);
  CHECK(pj::to_string(h.status_doc("first")["output"]) == R"("ok")");
  CHECK(h.events.empty());  // no webhooks in this test: nothing was emitted by a refusal either
}

TEST_CASE_TEMPLATE("store: error results FAIL; retry starts a clean run; only FAILED/TIMED_OUT retry", F, JOB_STORES) {
  Harness<F> h;
  h.submit("j");
  h.take_one("w1");
  h.store->post_stream("w1", "j", R"("old")");
  pe::WorkerResult error;
  error.kind = pe::WorkerResult::Kind::error;
  error.error = "boom";
  CHECK(h.store->post_result("w1", "j", error) == pe::PostOutcome::accepted);
  CHECK(pj::get_string(h.status_doc("j"), "error") == "boom");
  CHECK(h.store->retry("j") == pe::RetryOutcome::requeued);
  const auto doc = h.status_doc("j");
  CHECK(pj::get_string(doc, "status") == "IN_QUEUE");
  CHECK_FALSE(doc.HasMember("error"));
  CHECK_FALSE(doc.HasMember("workerId"));
  auto batch = h.store->stream("j");
  REQUIRE(batch);
  CHECK(batch->chunks.empty());
  h.take_one("w2");
  CHECK(h.done("w2", "j") == pe::PostOutcome::accepted);
  CHECK(h.store->retry("j") == pe::RetryOutcome::not_retryable);
  CHECK(h.store->retry("none") == pe::RetryOutcome::not_found);
}

TEST_CASE_TEMPLATE("store: cancel ends a queued job unrun and tells a holder to stop", F, JOB_STORES) {
  Harness<F> h;
  h.submit("running");
  h.submit("queued");
  h.take_one("w1");
  CHECK(h.store->cancel("queued") == pe::JobStatus::cancelled);
  CHECK(h.take("w2").empty());
  CHECK(h.store->health().in_queue == 0);
  CHECK(h.store->cancel("running") == pe::JobStatus::cancelled);
  CHECK(h.store->take_stop_requests("w1") == Strings{"running"});
  CHECK(h.store->take_stop_requests("w1").empty());
  CHECK(h.done("w1", "running") == pe::PostOutcome::ignored);
  CHECK(h.status("running") == "CANCELLED");
  CHECK(h.store->cancel("running") == pe::JobStatus::cancelled);
  CHECK_FALSE(h.store->cancel("none"));
  // A worker still reporting the ended job is told again, once per ping.
  h.store->ping("w1", {"running"});
  CHECK(h.store->take_stop_requests("w1") == Strings{"running"});
}

TEST_CASE_TEMPLATE("store: executionTimeout ends a running job TIMED_OUT and stops it", F, JOB_STORES) {
  Harness<F> h;
  pe::Policy p;
  p.execution_timeout = 3s;
  h.submit("j", p);
  h.advance(10s);  // queue time does not count
  CHECK(h.status("j") == "IN_QUEUE");
  h.take_one("w1");
  h.store->ping("w1", {"j"});
  h.advance(3s);
  CHECK(h.status("j") == "IN_PROGRESS");
  h.store->ping("w1", {"j"});
  h.advance(1ms);
  CHECK(h.status("j") == "TIMED_OUT");
  CHECK(h.store->take_stop_requests("w1") == Strings{"j"});
  CHECK(h.store->retry("j") == pe::RetryOutcome::requeued);
}

TEST_CASE_TEMPLATE("store: ttl removes a job in any state; retention keeps results, runsync ones shorter", F,
                   JOB_STORES) {
  Harness<F> h;
  pe::Policy p;
  p.ttl = 4s;
  h.submit("running", p);
  h.take_one("w1");
  h.submit("done");
  h.take_one("w1");
  h.done("w1", "done");
  h.submit("sync-done", {}, true);
  h.take_one("w1");
  h.done("w1", "sync-done");
  h.submit("queued", p);
  h.store->ping("w1", {"running"});
  h.advance(2s);
  CHECK(h.status("sync-done") == "COMPLETED");
  h.store->ping("w1", {"running"});
  h.advance(1ms);
  CHECK(h.status("sync-done") == "GONE");
  h.store->ping("w1", {"running"});
  h.advance(2s);
  CHECK(h.status("running") == "GONE");
  CHECK(h.status("queued") == "GONE");
  CHECK(h.store->take_stop_requests("w1") == Strings{"running"});
  CHECK(h.status("done") == "COMPLETED");
  h.store->ping("w1", {});
  h.advance(8s);
  CHECK(h.status("done") == "GONE");

  h.submit("q", p);
  h.advance(4001ms);
  CHECK(h.status("q") == "GONE");
  CHECK(h.take("w1").empty());
}

// More jobs than one sweep call of the Redis store removes (256 of each state): all go at their
// retention deadline, none before, and the health counts drop with them.
TEST_CASE_TEMPLATE("store: retention removes every job due at once, in bulk; health counts follow",
                   F, JOB_STORES) {
  Harness<F> h;
  constexpr int kJobs = 1200;
  std::vector<std::string> ids;
  for (int i = 0; i < kJobs; ++i) {
    ids.push_back("bulk-" + std::to_string(i));
    h.submit(ids.back());
  }
  std::size_t taken = 0;
  while (taken < ids.size()) {
    const auto jobs = h.take("w1", 200);
    REQUIRE(!jobs.empty());
    taken += jobs.size();
  }
  pe::WorkerResult error;
  error.kind = pe::WorkerResult::Kind::error;
  error.error = "boom";
  for (int i = 0; i < kJobs; ++i) {
    // Every third job fails: two terminal states to count and remove.
    if (i % 3 == 0) {
      CHECK(h.store->post_result("w1", ids[i], error) == pe::PostOutcome::accepted);
    } else {
      CHECK(h.done("w1", ids[i]) == pe::PostOutcome::accepted);
    }
  }
  CHECK(h.store->health().completed == 800);
  CHECK(h.store->health().failed == 400);
  h.store->ping("w1", {});
  h.advance(10s);
  CHECK(h.status(ids.front()) == "FAILED");
  CHECK(h.status(ids.back()) == "COMPLETED");
  CHECK(h.store->health().completed == 800);
  h.store->ping("w1", {});
  h.advance(1ms);
  CHECK(h.store->health().completed == 0);
  CHECK(h.store->health().failed == 0);
  int left = 0;
  for (const auto& id : ids) left += h.status(id) != "GONE";
  CHECK(left == 0);
  // A failed job's retry index went with it: nothing comes back at its TTL.
  CHECK(h.store->retry(ids.front()) == pe::RetryOutcome::not_found);
  CHECK(h.take("w1").empty());

  // As many queued jobs, all with one TTL: all gone at once when it runs out.
  pe::Policy p;
  p.ttl = 4s;
  for (const auto& id : ids) h.submit(id + "-ttl", p);
  CHECK(h.store->health().in_queue == kJobs);
  h.advance(4001ms);
  CHECK(h.store->health().in_queue == 0);
  CHECK(h.status(ids.back() + "-ttl") == "GONE");
  CHECK(h.take("w1").empty());
}

TEST_CASE_TEMPLATE(
    "store: a silent worker's job is requeued at the head after the grace, then FAILED at the "
    "limit",
    F, JOB_STORES) {
  Harness<F> h;
  h.submit("j");
  h.submit("later");
  CHECK(h.take_one("w1") == "j");
  h.store->post_stream("w1", "j", R"("old run")");
  h.progress("w1", "j", R"("old progress")");
  std::size_t cursor = 0;
  CHECK(h.chunks_from("j", cursor) == Strings{R"("old run")"});
  // An open request is no sign of life: the grace counts from its start.
  h.store->worker_begin("w1");
  h.advance(5s);
  CHECK(h.status("j") == "IN_PROGRESS");
  h.advance(1ms);
  CHECK(h.status("j") == "IN_QUEUE");
  const auto doc = h.status_doc("j");
  CHECK_FALSE(doc.HasMember("output"));
  CHECK_FALSE(doc.HasMember("workerId"));
  CHECK(h.store->health().retried == 1);
  // The old run's chunks are gone for every reader.
  auto batch = h.store->stream("j");
  REQUIRE(batch);
  CHECK(batch->chunks.empty());
  CHECK(h.chunks_from("j", cursor).empty());
  // The lost worker cannot post for it any more.
  CHECK(h.done("w1", "j") == pe::PostOutcome::refused);
  CHECK(h.store->post_stream("w1", "j", R"("stale")") == pe::PostOutcome::refused);

  CHECK(h.take_one("w2") == "j");  // head of the queue, before "later"
  h.store->post_stream("w2", "j", R"("new run")");
  CHECK(h.chunks_from("j", cursor) == Strings{R"("new run")"});
  batch = h.store->stream("j");
  REQUIRE(batch);
  CHECK(batch->chunks == Strings{R"("new run")"});
  h.advance(5001ms);
  CHECK(h.take_one("w3") == "j");
  h.advance(5001ms);
  CHECK(h.status("j") == "FAILED");
  CHECK(pj::get_string(h.status_doc("j"), "error").find("retry limit") != std::string::npos);
  CHECK(h.store->health().retried == 2);
}

TEST_CASE_TEMPLATE("store: a taken job carries its policy and the runs it lost with their workers", F, JOB_STORES) {
  Harness<F> h;
  pe::Policy policy;
  policy.execution_timeout = 7000ms;
  policy.ttl = 60000ms;
  policy.low_priority = true;
  h.submit("j", policy);
  auto taken = h.take("w1");
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].policy.execution_timeout == 7000ms);
  CHECK(taken[0].policy.ttl == 60000ms);
  CHECK(taken[0].policy.low_priority);
  CHECK(taken[0].retries == 0);
  const pj::Document job = pj::parse(pe::render_taken(taken[0]));
  CHECK(pj::to_string(job["policy"]) == R"({"executionTimeout":7000,"ttl":60000,"lowPriority":true})");
  CHECK(pj::get_int(job, "retries", -1) == 0);

  h.advance(5001ms);  // w1 went silent: requeued, one run lost
  taken = h.take("w2");
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].retries == 1);
  CHECK(taken[0].policy.execution_timeout == 7000ms);
  CHECK(pj::get_int(pj::parse(pe::render_taken(taken[0])), "retries", -1) == 1);

  // A delivery that failed is no lost run.
  h.store->release("w2", taken);
  taken = h.take("w3");
  REQUIRE(taken.size() == 1);
  CHECK(taken[0].retries == 1);
}

TEST_CASE_TEMPLATE("store: a job its live holder stops listing in pings is requeued after the grace", F, JOB_STORES) {
  Harness<F> h;
  h.submit("listed");
  h.submit("dropped");
  h.take_one("w1");
  h.take_one("w1");
  for (int i = 0; i < 8; ++i) {
    h.store->ping("w1", {"listed", "dropped"});
    h.advance(1s);
  }
  CHECK(h.status("dropped") == "IN_PROGRESS");  // listed: no limit but executionTimeout
  // The worker goes on pinging (it is alive) but no longer lists one job: it can deliver nothing
  // for it.
  for (int i = 0; i < 4; ++i) {
    h.store->ping("w1", {"listed"});
    h.advance(1s);
    CHECK(h.status("dropped") == "IN_PROGRESS");
  }
  h.store->ping("w1", {"listed"});
  h.advance(1ms);
  CHECK(h.status("dropped") == "IN_QUEUE");
  CHECK(h.status("listed") == "IN_PROGRESS");
  CHECK(h.store->health().retried == 1);
  CHECK(h.store->take_stop_requests("w1") == Strings{"dropped"});
  CHECK(h.done("w1", "dropped") == pe::PostOutcome::refused);
}

TEST_CASE_TEMPLATE(
    "store: a take its live worker never acknowledges (the answer was lost with its replica) goes back "
    "to the head, no retry counted, a bounded number of times",
    F, JOB_STORES) {
  Harness<F> h;
  h.submit("lost");
  h.submit("next");
  auto lose_once = [&](const std::string& worker) {
    CHECK(h.take_one(worker) == "lost");  // run in the store; the response never reaches the worker
    for (int i = 0; i < 5; ++i) {
      h.store->ping(worker, {});  // alive, holding nothing it knows of
      h.advance(1s);
      CHECK(h.status("lost") == "IN_PROGRESS");
    }
    h.store->ping(worker, {});
    h.advance(1ms);
    CHECK(h.status("lost") == "IN_QUEUE");
  };
  lose_once("w1");
  CHECK(h.store->health().retried == 0);
  CHECK_FALSE(h.status_doc("lost").HasMember("workerId"));
  CHECK(h.done("w1", "lost") == pe::PostOutcome::refused);
  lose_once("w2");  // still at the head, before "next"
  CHECK(h.store->health().retried == 0);
  // retry_limit (2) such losses: the next one counts as a retry, so a worker that never lists what
  // it runs cannot hold a job forever.
  lose_once("w3");
  CHECK(h.store->health().retried == 1);
  // A job its holder acknowledged (listed, or posted for) and then dropped is a retry at once.
  CHECK(h.take_one("w4") == "lost");
  h.store->post_stream("w4", "lost", R"("a chunk")");
  for (int i = 0; i < 5; ++i) {
    h.store->ping("w4", {});
    h.advance(1s);
  }
  h.store->ping("w4", {});
  h.advance(1ms);
  CHECK(h.status("lost") == "IN_QUEUE");
  CHECK(h.store->health().retried == 2);
  CHECK(h.status("next") == "IN_QUEUE");
}

TEST_CASE_TEMPLATE("store: an undelivered take goes back to the head, no retry counted; a stale release is void", F,
                   JOB_STORES) {
  Harness<F> h;
  h.submit("a");
  h.submit("b");
  const auto taken = h.take("gone", 1);
  REQUIRE(taken.size() == 1);
  h.store->release("gone", taken);
  CHECK(h.status("a") == "IN_QUEUE");
  CHECK_FALSE(h.status_doc("a").HasMember("workerId"));
  CHECK(h.store->health().retried == 0);
  CHECK(h.store->health().in_queue == 2);
  CHECK(h.done("gone", "a") == pe::PostOutcome::refused);
  CHECK(h.take_one("live") == "a");
  // Released again after another worker took it: nothing happens.
  h.store->release("gone", taken);
  CHECK(h.status("a") == "IN_PROGRESS");
  // The same worker's earlier lease does not give back its current one.
  h.store->release("live", taken);
  CHECK(h.status("a") == "IN_PROGRESS");
  CHECK(h.done("live", "a") == pe::PostOutcome::accepted);
}

TEST_CASE_TEMPLATE("store: stream readers by cursor never take chunks from each other; /stream keeps its meaning", F,
                   JOB_STORES) {
  Harness<F> h;
  h.submit("j");
  h.take_one("w1");
  for (const char* c : {R"("a")", R"("b")"}) CHECK(h.store->post_stream("w1", "j", c) == pe::PostOutcome::accepted);
  std::size_t one = 0, two = 0;
  CHECK(h.chunks_from("j", one) == Strings{R"("a")", R"("b")"});
  h.store->post_stream("w1", "j", R"("c")");
  CHECK(h.chunks_from("j", two) == Strings{R"("a")", R"("b")", R"("c")"});
  CHECK(h.chunks_from("j", one) == Strings{R"("c")"});
  CHECK(h.chunks_from("j", one).empty());
  // The JSON poll: each chunk once, whatever cursor readers did.
  auto batch = h.store->stream("j");
  REQUIRE(batch);
  CHECK(batch->chunks == Strings{R"("a")", R"("b")", R"("c")"});
  CHECK(h.store->stream("j")->chunks.empty());
  h.store->post_stream("w1", "j", R"("d")");
  h.done("w1", "j");
  batch = h.store->stream("j");
  CHECK(batch->chunks == Strings{R"("d")"});
  CHECK(batch->status == pe::JobStatus::completed);
  // After the end, a new reader still reads everything.
  std::size_t late = 0;
  CHECK(h.chunks_from("j", late).size() == 4);
  CHECK_FALSE(h.store->read_stream("none", 0));
}

TEST_CASE_TEMPLATE("store: a queue watch is woken once per queued job, and a wake not used passes on", F, JOB_STORES) {
  Harness<F> h;
  int woken[3] = {0, 0, 0};
  std::vector<pe::Subscription> subs;
  for (int i = 0; i < 3; ++i) subs.push_back(h.store->watch(pe::Topic::queue, {}, [&woken, i] { ++woken[i]; }));
  h.submit("j1");
  CHECK(woken[0] + woken[1] + woken[2] == 1);
  CHECK(woken[0] == 1);  // the longest waiting
  // The woken poller leaves without taking (its client had gone): the next one is woken.
  subs[0].reset();
  CHECK(woken[1] == 1);
  CHECK(woken[2] == 0);
  // It takes, then its watch goes: nobody else is woken for a job that is no longer queued.
  h.take_one("w");
  subs[1].reset();
  CHECK(woken[2] == 0);
  h.submit("j2");
  h.submit("j3");
  CHECK(woken[2] == 1);  // the only one left; a new watcher gets the second job's wake
  int late = 0;
  subs.push_back(h.store->watch(pe::Topic::queue, {}, [&late] { ++late; }));
  CHECK(late == 0);  // registering wakes nothing: the caller looks at the queue itself right after
  h.submit("j4");
  CHECK(late == 1);  // three jobs queued and one poller woken: the newcomer gets one
  subs[2].reset();
  CHECK(late == 1);
  // wake_all (shutdown) reaches every watch.
  int other = 0;
  auto job_watch = h.store->watch(pe::Topic::job, "j2", [&other] { ++other; });
  h.store->wake_all();
  CHECK(other == 1);
  CHECK(late == 2);
}

TEST_CASE_TEMPLATE("store: lowPriority jobs are taken after every normal one; purge removes queued jobs", F,
                   JOB_STORES) {
  Harness<F> h;
  pe::Policy low;
  low.low_priority = true;
  h.submit("low", low);
  h.submit("n1");
  h.submit("n2");
  CHECK(h.take_one("w") == "n1");
  h.submit("n3");
  const auto batch = h.take("w", 5);
  REQUIRE(batch.size() == 3);
  CHECK(batch[0].id == "n2");
  CHECK(batch[1].id == "n3");
  CHECK(batch[2].id == "low");
  h.submit("q1");
  h.submit("q2");
  CHECK(h.store->purge_queue() == 2);
  CHECK(h.status("q1") == "GONE");
  CHECK(h.status("n1") == "IN_PROGRESS");
  CHECK(h.store->health().in_queue == 0);
}

TEST_CASE_TEMPLATE("store: health counts workers alive by their last sign of life", F, JOB_STORES) {
  Harness<F> h;
  h.submit("j");
  h.take_one("busy");
  h.store->ping("idle", {});
  auto health = h.store->health();
  CHECK(health.workers_running == 1);
  CHECK(health.workers_idle == 1);
  CHECK(health.in_progress == 1);
  h.store->worker_begin("idle");  // a poll left open by a process that is gone
  h.clock->advance(6s);
  health = h.store->health();
  CHECK(health.workers_running == 0);
  CHECK(health.workers_idle == 0);
}

TEST_CASE_TEMPLATE("store: stop channel: each stop once, re-announced while the worker still holds the job", F,
                   JOB_STORES) {
  Harness<F> h;
  h.submit("j");
  h.take_one("w1");
  CHECK(h.store->take_stop_requests("w1").empty());
  h.store->cancel("j");
  CHECK(h.store->take_stop_requests("w1") == Strings{"j"});
  CHECK(h.store->take_stop_requests("w1").empty());
  // job-take with job_in_progress=1 names no job: the stop is sent again, a bounded number of times.
  int reannounced = 0;
  for (int i = 0; i < 10; ++i) {
    h.store->report_in_progress("w1", true);
    reannounced += static_cast<int>(h.store->take_stop_requests("w1").size());
  }
  CHECK(reannounced >= 1);
  CHECK(reannounced <= 5);
  // A ping that still lists the job: sent again, every time.
  h.store->ping("w1", {"j"});
  CHECK(h.store->take_stop_requests("w1") == Strings{"j"});
  h.store->ping("w1", {"j"});
  CHECK(h.store->take_stop_requests("w1") == Strings{"j"});
  // The worker no longer lists it: it acted on the stop; nothing more is sent.
  h.store->ping("w1", {});
  h.store->report_in_progress("w1", true);
  CHECK(h.store->take_stop_requests("w1").empty());
  // Taking another job leaves a pending stop for an earlier one alone; a ping then listing only the
  // new job sends nothing more.
  h.submit("k");
  h.take_one("w1");
  CHECK(h.store->cancel("k") == pe::JobStatus::cancelled);
  h.submit("k2");
  CHECK(h.take_one("w1") == "k2");
  CHECK(h.store->take_stop_requests("w1") == Strings{"k"});
  h.store->ping("w1", {"k2"});
  CHECK(h.store->take_stop_requests("w1").empty());
}

TEST_CASE_TEMPLATE("store: a result posted once the executionTimeout has run out ends the job TIMED_OUT", F,
                   JOB_STORES) {
  Harness<F> h;
  pe::Policy policy;
  policy.execution_timeout = 5000ms;
  h.submit("late", policy);
  h.submit("in-time", policy);
  REQUIRE(h.take_one("w1") == "late");
  REQUIRE(h.take_one("w1") == "in-time");
  h.clock->advance(4999ms);
  CHECK(h.done("w1", "in-time") == pe::PostOutcome::accepted);
  CHECK(h.status("in-time") == "COMPLETED");
  // The worker noticed the deadline before the sweep did (no sweep has run): the same end.
  h.clock->advance(1ms);
  pe::WorkerResult timeout;
  timeout.kind = pe::WorkerResult::Kind::error;
  timeout.error = "the worker's own timeout report";
  CHECK(h.store->post_result("w1", "late", std::move(timeout)) == pe::PostOutcome::accepted);
  const auto doc = h.status_doc("late");
  CHECK(pj::get_string(doc, "status") == "TIMED_OUT");
  CHECK(pj::get_string(doc, "error") == "job exceeded its execution timeout of 5000 ms");
}

TEST_CASE_TEMPLATE("store: a waited-for job's record after its end is the one every read gives", F, JOB_STORES) {
  Harness<F> h;
  int fired = 0;
  // A /runsync waits like this: the watch first, then the job.
  const pe::Subscription watch = h.store->watch(pe::Topic::job, "j", [&] { ++fired; });
  h.submit("j");
  h.clock->advance(40ms);
  REQUIRE(h.take_one("w1") == "j");
  h.clock->advance(60ms);
  CHECK(h.done("w1", "j", R"({"v":1})") == pe::PostOutcome::accepted);
  CHECK(fired >= 1);
  const auto first = h.status_doc("j");
  CHECK(pj::get_string(first, "status") == "COMPLETED");
  CHECK(pj::to_string(first["output"]) == R"({"v":1})");
  CHECK(pj::get_int(first, "delayTime", -1) == 40);
  CHECK(pj::get_int(first, "executionTime", -1) == 60);
  CHECK(pj::get_string(first, "workerId") == "w1");
  CHECK(pj::to_string(h.status_doc("j")) == pj::to_string(first));

  // Cancelled the same way; and past its retention a job is gone, read before or not.
  const pe::Subscription watch_k = h.store->watch(pe::Topic::job, "k", [] {});
  h.submit("k");
  CHECK(h.store->cancel("k") == pe::JobStatus::cancelled);
  CHECK(h.status("k") == "CANCELLED");
  const pe::Subscription watch_m = h.store->watch(pe::Topic::job, "m", [] {});
  h.submit("m");
  REQUIRE(h.take_one("w1") == "m");
  CHECK(h.done("w1", "m") == pe::PostOutcome::accepted);
  h.advance(10001ms);
  CHECK(h.status("j") == "GONE");
  CHECK(h.status("m") == "GONE");
}

#ifdef PODWORKER_STORE_CONFORMANCE_REDIS
// Redis's own count of the commands a status read sends.
std::int64_t hmget_calls() {
  pe::RedisConnection c(RedisStoreFactory::server().address(), std::chrono::seconds(5));
  const pe::RedisReply r = c.command({"INFO", "commandstats"});
  const std::string_view info = pe::reply_text(*r);
  constexpr std::string_view key = "cmdstat_hmget:calls=";
  const auto at = info.find(key);
  return at == std::string_view::npos ? 0 : std::stoll(std::string(info.substr(at + key.size(), 20)));
}

TEST_CASE("redis store: the waiter's status read after the end it waited for asks Redis nothing") {
  Harness<RedisStoreFactory> h;
  const pe::Subscription watch = h.store->watch(pe::Topic::job, "j", [] {});
  h.submit("j");
  REQUIRE(h.take_one("w1") == "j");
  CHECK(h.done("w1", "j") == pe::PostOutcome::accepted);
  const std::int64_t before = hmget_calls();
  CHECK(h.status("j") == "COMPLETED");  // from the script's reply
  CHECK(hmget_calls() == before);
  CHECK(h.status("j") == "COMPLETED");  // taken by the first read: from Redis
  CHECK(hmget_calls() == before + 1);

  // Nobody waits for this one: nothing kept, read from Redis.
  h.submit("unwatched");
  REQUIRE(h.take_one("w1") == "unwatched");
  CHECK(h.done("w1", "unwatched") == pe::PostOutcome::accepted);
  const std::int64_t later = hmget_calls();
  CHECK(h.status("unwatched") == "COMPLETED");
  CHECK(hmget_calls() == later + 1);
}
#endif

TEST_CASE_TEMPLATE("store: a duplicate job id is a programming error, not a second job", F, JOB_STORES) {
  Harness<F> h;
  h.submit("same");
  CHECK_THROWS((void)h.try_submit("same"));
  CHECK(h.store->health().in_queue == 1);
}

TEST_CASE_TEMPLATE("store: queued payload bytes are capped; every way out of the queue frees them", F, JOB_STORES) {
  pe::StoreOptions o = test_options();
  const std::size_t job_bytes = pe::queued_payload_bytes([] {
    pe::NewJob j;
    j.input_json = R"({"n":1})";
    return j;
  }());
  o.max_queued_bytes = 3 * job_bytes;
  Harness<F> h(o);
  h.submit("a");
  h.submit("b");
  h.submit("c");
  const pe::SubmitResult full = h.try_submit("d");
  CHECK_FALSE(full.accepted);
  CHECK(full.job_bytes == job_bytes);
  CHECK(full.queued_bytes == 3 * job_bytes);
  CHECK(h.status("d") == "GONE");  // nothing was stored
  CHECK(h.status("a") == "IN_QUEUE");
  CHECK(h.store->health().in_queue == 3);

  CHECK(h.take_one("w1") == "a");  // taken: freed
  h.submit("d");
  CHECK_FALSE(h.try_submit("e").accepted);
  CHECK(h.store->cancel("b"));  // cancelled: freed
  h.submit("e");
  CHECK_FALSE(h.try_submit("f").accepted);
  CHECK(h.store->purge_queue() == 3);  // purged: freed
  h.submit("f");
  h.submit("g");
  h.submit("h");
  CHECK_FALSE(h.try_submit("i").accepted);

  // A job requeued after its holder went silent counts again but is never refused.
  CHECK(h.take_one("w1") == "f");
  h.submit("i");
  h.advance(6s);  // w1's grace passes: "a" and "f" go back to the queue, over the cap
  CHECK(h.status("a") == "IN_QUEUE");
  CHECK(h.status("f") == "IN_QUEUE");
  CHECK(h.store->health().in_queue == 5);
  CHECK_FALSE(h.try_submit("j").accepted);
}

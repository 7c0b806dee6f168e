// The worker and the real local endpoint over loopback: a job's whole life as a client sees it
// through /run, /runsync, /status, /stream and /cancel. Also the `worker` executable itself, for
// what only a process can show: SIGKILL mid-job, SIGTERM draining, --serve-api.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "child_process.h"
#include "http_client.h"
#include "podworker/endpoint/server.h"
#include "serve_api.h"
#include "test_support.h"
#include "time_budget.h"

namespace podworker::test {
namespace {

using podworker::testing::time_budget;

using namespace std::chrono_literals;

endpoint::Options endpoint_options() {
  endpoint::Options o;
  o.port = 0;
  o.rate_limit = false;
  o.execution_timeout_min = 1ms;
  o.sweep_interval = 20ms;
  o.take_wait = 20s;
  o.stop_wait = 20s;
  o.stream_wait = 200ms;
  o.shutdown_timeout = 2s;
  return o;
}

// A client of the job API.
class Client {
 public:
  explicit Client(std::string base) : base_(std::move(base)), http_("", 2000ms) {}

  json::Document post(const std::string& path, const std::string& body) {
    return parse(http_.post(base_ + path, body, "", 30s));
  }
  json::Document get(const std::string& path) { return parse(http_.get(base_ + path, 30s)); }

  // Polls /status until `done(status document)` holds or the deadline passes. The endpoint's
  // state is remote, so the test asks again every few milliseconds rather than sleeping blind.
  template <typename Done>
  json::Document status_until(const std::string& id, Done done, std::chrono::seconds deadline = 20s) {
    const auto end = std::chrono::steady_clock::now() + deadline;
    for (;;) {
      auto doc = get("/v2/local/status/" + id);
      if (done(doc) || std::chrono::steady_clock::now() > end) return doc;
      std::this_thread::sleep_for(5ms);
    }
  }
  json::Document wait_terminal(const std::string& id) {
    return status_until(id, [](const json::Document& d) {
      const auto s = json::get_string(d, "status");
      return s != "IN_QUEUE" && s != "IN_PROGRESS";
    });
  }
  std::string run(const std::string& body) {
    const auto doc = post("/v2/local/run", body);
    return json::get_string(doc, "id");
  }

 private:
  static json::Document parse(const worker::HttpResponse& r) {
    if (r.status == 0) throw std::runtime_error("request failed: " + r.error);
    return r.body.empty() ? json::Document() : json::parse(r.body);
  }
  std::string base_;
  worker::HttpClient http_;
};

struct Local {
  endpoint::Server server;
  explicit Local(endpoint::Options o = endpoint_options()) : server(std::move(o)) { server.start(); }
  WorkerOptions worker_options() {
    WorkerOptions o = fast_options();
    worker::point_at_endpoint(o, server.url(), "local");
    return o;
  }
  // The same, as the environment of a `worker` process.
  std::vector<std::string> worker_env() {
    const std::string v2 = server.url() + "/v2/local";
    return {"RUNPOD_WEBHOOK_GET_JOB=" + v2 + "/job-take/$ID",
            "RUNPOD_WEBHOOK_POST_OUTPUT=" + v2 + "/job-done/$RUNPOD_POD_ID/$ID",
            "RUNPOD_WEBHOOK_POST_STREAM=" + v2 + "/job-stream/$RUNPOD_POD_ID/$ID",
            "RUNPOD_WEBHOOK_PING=" + v2 + "/ping/$RUNPOD_POD_ID",
            "RUNPOD_PING_INTERVAL=50",
            "RUNPOD_LOG_LEVEL=WARN",
            "PODWORKER_BACKOFF_INITIAL_MS=5",
            "PODWORKER_BACKOFF_MAX_MS=50"};
  }
};

std::string status_of(const json::Document& d) { return json::get_string(d, "status"); }

// Counts handlers inside execute() at once; each waits (bounded) until `target` are in.
struct Rendezvous {
  std::mutex mu;
  std::condition_variable cv;
  int inside = 0;
  int peak = 0;
};
Rendezvous g_rendezvous;
std::atomic<int> g_cancel_seen{0};

HandlerRegistry& endpoint_registry() {
  static HandlerRegistry& r = [] () -> HandlerRegistry& {
    auto& reg = test_registry();
    reg.add("rendezvous", plain_handler([](Job& job) {
              const int target = static_cast<int>(json::get_int(job.input(), "target", 1));
              std::unique_lock lock(g_rendezvous.mu);
              ++g_rendezvous.inside;
              g_rendezvous.peak = std::max(g_rendezvous.peak, g_rendezvous.inside);
              g_rendezvous.cv.notify_all();
              g_rendezvous.cv.wait_for(lock, 20s, [&] { return g_rendezvous.peak >= target; });
              const int peak = g_rendezvous.peak;
              --g_rendezvous.inside;
              json::Document out;
              out.SetObject();
              out.AddMember("peak", peak, out.GetAllocator());
              return Output::ok(std::move(out));
            }));
    reg.add("wait_cancel", plain_handler([](Job& job) {
              job.progress("waiting");
              std::mutex m;
              std::condition_variable_any cv;
              std::unique_lock lock(m);
              cv.wait_for(lock, job.stop_token(), 60s, [] { return false; });
              if (job.cancelled()) ++g_cancel_seen;
              return Output::ok("not cancelled");
            }));
    // What the job's clock and history look like from inside the handler.
    reg.add("job_facts", plain_handler([](Job& job) {
              json::Document out;
              out.SetObject();
              const auto left = job.time_left();
              out.AddMember("time_left_ms", left ? static_cast<std::int64_t>(left->count()) : -1,
                            out.GetAllocator());
              out.AddMember("retries", job.retry_count(), out.GetAllocator());
              return Output::ok(std::move(out));
            }));
    return reg;
  }();
  return r;
}

}  // namespace

TEST_CASE("endpoint: /run then /status shows COMPLETED with output, delayTime and executionTime") {
  Local local;
  Client c(local.server.url());
  RunningWorker w(local.worker_options(), "echo");
  const auto id = c.run(R"({"input":{"prompt":"hello"}})");
  const auto st = c.wait_terminal(id);
  CHECK(status_of(st) == "COMPLETED");
  CHECK(json::to_string(st["output"]) == R"({"prompt":"hello"})");
  CHECK(st["delayTime"].IsNumber());
  CHECK(st["executionTime"].IsNumber());
  CHECK(json::get_string(st, "workerId") == w.worker().worker_id());
}

TEST_CASE("endpoint: /runsync returns the finished job") {
  Local local;
  Client c(local.server.url());
  RunningWorker w(local.worker_options(), "echo");
  const auto st = c.post("/v2/local/runsync", R"({"input":{"v":[1,2,3]}})");
  CHECK(status_of(st) == "COMPLETED");
  CHECK(json::to_string(st["output"]) == R"({"v":[1,2,3]})");
}

TEST_CASE("endpoint: a 5 MB stream arrives through /stream in chunks of at most 1 MB") {
  Local local;
  Client c(local.server.url());
  RunningWorker w(local.worker_options(), "stream_echo");
  // One yield of 5 MB: the handler repeats a short text 400000 times and yields it whole.
  const std::string unit = "token ünïcode\t\"q\"";
  std::string text;
  for (int i = 0; i < 400000; ++i) text += unit;
  json::Document job;
  job.SetObject();
  auto& a = job.GetAllocator();
  json::Value input(rapidjson::kObjectType);
  input.AddMember("text", json::string_value(unit, a), a);
  input.AddMember("repeat", 400000, a);
  input.AddMember("chunk_size", 0, a);
  input.AddMember("progress", false, a);
  job.AddMember("input", input, a);
  const auto id = c.run(json::to_string(job));
  std::string joined;
  int chunks = 0;
  const auto end = std::chrono::steady_clock::now() + 30s;
  for (;;) {
    const auto doc = c.post("/v2/local/stream/" + id, "");
    REQUIRE(doc.IsObject());
    if (const auto* stream = json::find(doc, "stream"); stream != nullptr && stream->IsArray()) {
      for (const auto& item : stream->GetArray()) {
        const auto* out = json::find(item, "output");
        REQUIRE(out != nullptr);
        REQUIRE(out->IsString());
        ++chunks;
        CHECK(("{\"output\":" + json::to_string(*out) + "}").size() <= 1024u * 1024);
        joined.append(out->GetString(), out->GetStringLength());
      }
    }
    const auto s = status_of(doc);
    if (s == "COMPLETED" || s == "FAILED" || std::chrono::steady_clock::now() > end) {
      CHECK(s == "COMPLETED");
      break;
    }
  }
  CHECK(chunks >= 5);
  CHECK(joined.size() == text.size());
  CHECK(joined == text);
}

TEST_CASE("endpoint: progress shows while running; cancel stops the handler and posts nothing") {
  Local local;
  Client c(local.server.url());
  (void)endpoint_registry();
  RunningWorker w(local.worker_options(), "wait_cancel");
  const int seen_before = g_cancel_seen.load();
  const auto id = c.run(R"({"input":{}})");
  const auto running = c.status_until(id, [](const json::Document& d) {
    return status_of(d) == "IN_PROGRESS" && d.HasMember("output");
  });
  REQUIRE(status_of(running) == "IN_PROGRESS");
  CHECK(json::to_string(running["output"]) == R"("waiting")");
  const auto cancelled = c.post("/v2/local/cancel/" + id, "");
  CHECK(status_of(cancelled) == "CANCELLED");
  // The stop channel reaches the handler: it returns and the worker lets go of the job.
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (!w.worker().held_jobs().empty() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(w.worker().held_jobs().empty());
  CHECK(g_cancel_seen.load() == seen_before + 1);
  CHECK(status_of(c.get("/v2/local/status/" + id)) == "CANCELLED");
}

TEST_CASE("endpoint: a handler exception ends the job FAILED with the error report") {
  Local local;
  Client c(local.server.url());
  RunningWorker w(local.worker_options(), "throws");
  const auto st = c.wait_terminal(c.run(R"({"input":{}})"));
  CHECK(status_of(st) == "FAILED");
  REQUIRE(st.HasMember("error"));
  std::string error = st["error"].IsString() ? st["error"].GetString() : json::to_string(st["error"]);
  const auto report = json::parse(error);
  CHECK(json::get_string(report, "error_type") == "std::runtime_error");
  CHECK(json::get_string(report, "error_message") == "boom");
  CHECK(report.HasMember("error_traceback"));
  CHECK(json::get_string(report, "worker_id") == w.worker().worker_id());
}

TEST_CASE("endpoint: policy.executionTimeout ends a running job TIMED_OUT and stops its handler") {
  Local local;
  Client c(local.server.url());
  RunningWorker w(local.worker_options(), "sleep");
  const auto id = c.run(R"({"input":{"ms":600000,"step_ms":5},"policy":{"executionTimeout":300}})");
  const auto st = c.wait_terminal(id);
  CHECK(status_of(st) == "TIMED_OUT");
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (!w.worker().held_jobs().empty() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(5ms);
  }
  CHECK(w.worker().held_jobs().empty());
}

TEST_CASE("endpoint: the job's policy and lost runs reach the handler as deadline() and retry_count()") {
  auto o = endpoint_options();
  o.heartbeat_grace = 100ms;
  Local local(o);
  Client c(local.server.url());
  (void)endpoint_registry();
  const auto id = c.run(R"({"input":{},"policy":{"executionTimeout":300000}})");
  // A worker that takes the job and is never heard from again: the job is requeued, one run lost.
  const auto taken = c.get("/v2/local/job-take/vanished");
  REQUIRE(json::get_string(taken, "id") == id);
  CHECK(json::to_string(taken["policy"]) == R"({"executionTimeout":300000,"ttl":86400000,"lowPriority":false})");
  CHECK(json::get_int(taken, "retries", -1) == 0);
  c.status_until(id, [](const json::Document& d) { return status_of(d) == "IN_QUEUE"; });

  RunningWorker w(local.worker_options(), "job_facts");
  const auto st = c.wait_terminal(id);
  REQUIRE(status_of(st) == "COMPLETED");
  CHECK(json::get_int(st["output"], "retries", -1) == 1);
  const auto left = json::get_int(st["output"], "time_left_ms", -1);
  CHECK(left > 280000);
  CHECK(left <= 300000);
}

TEST_CASE("endpoint: concurrency N runs N jobs at once") {
  Local local;
  Client c(local.server.url());
  (void)endpoint_registry();
  {
    std::lock_guard lock(g_rendezvous.mu);
    g_rendezvous.peak = 0;
    g_rendezvous.inside = 0;
  }
  auto o = local.worker_options();
  o.concurrency = 4;
  RunningWorker w(o, "rendezvous");
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) ids.push_back(c.run(R"({"input":{"target":4}})"));
  for (const auto& id : ids) {
    const auto st = c.wait_terminal(id);
    CHECK(status_of(st) == "COMPLETED");
    CHECK(json::to_string(st["output"]) == R"({"peak":4})");
  }
}

TEST_CASE("worker process: SIGKILL mid-job requeues it after the grace and a second worker completes it") {
  auto eo = endpoint_options();
  // The worker pings every 50 ms listing the jobs it holds; a job not listed within the grace
  // counts as a take whose response was lost (requeued, no retry counted), which under a sanitizer
  // on a loaded machine can happen before the kill: the grace is stretched there like the bounds.
  eo.heartbeat_grace = time_budget(400ms);
  // Long polls as in production (20 s): the killed worker's open job-stop poll must not keep it
  // alive; the grace counts from its last ping.
  Local local(eo);
  Client c(local.server.url());
  const auto id = c.run(R"({"input":{"ms":600000,"step_ms":5}})");
  {
    ChildProcess first(PODWORKER_WORKER_BINARY, {"--handler", "sleep"}, local.worker_env());
    const auto st = c.status_until(id, [](const json::Document& d) { return status_of(d) == "IN_PROGRESS"; });
    REQUIRE(status_of(st) == "IN_PROGRESS");
    first.signal(SIGKILL);
    CHECK(first.wait() == 128 + SIGKILL);
    const auto killed = std::chrono::steady_clock::now();
    const auto requeued =
        c.status_until(id, [](const json::Document& d) { return status_of(d) == "IN_QUEUE"; }, time_budget(5s));
    CHECK(status_of(requeued) == "IN_QUEUE");
    CHECK(std::chrono::steady_clock::now() - killed < time_budget(2s));
  }
  ChildProcess second(PODWORKER_WORKER_BINARY, {"--handler", "echo"}, local.worker_env());
  const auto st = c.wait_terminal(id);
  CHECK(status_of(st) == "COMPLETED");
  CHECK(json::to_string(st["output"]) == R"({"ms":600000,"step_ms":5})");
  const auto health = c.get("/v2/local/health");
  CHECK(json::get_int(health["jobs"], "retried", 0) >= 1);
  second.signal(SIGTERM);
  CHECK(second.wait() == 0);
}

// The worker leaves while its job-take long poll waits; the next job must go to a live worker at
// once, not to the dead connection.
void departed_worker_gets_no_job(int sig) {
  Local local;  // 20 s long polls
  Client c(local.server.url());
  auto idle = [&] { return json::get_int(c.get("/v2/local/health")["workers"], "idle", -1); };
  auto env = local.worker_env();
  env.push_back("RUNPOD_POD_ID=departed");
  {
    ChildProcess first(PODWORKER_WORKER_BINARY, {"--handler", "echo"}, env);
    const auto end = std::chrono::steady_clock::now() + 20s;
    while (idle() != 1 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(5ms);
    REQUIRE(idle() == 1);
    first.signal(sig);
    CHECK(first.wait() == (sig == SIGTERM ? 0 : 128 + sig));
  }
  env.back() = "RUNPOD_POD_ID=live";
  ChildProcess second(PODWORKER_WORKER_BINARY, {"--handler", "echo"}, env);
  const auto end = std::chrono::steady_clock::now() + 20s;
  while (idle() != 2 && std::chrono::steady_clock::now() < end) std::this_thread::sleep_for(5ms);
  REQUIRE(idle() == 2);  // the departed one still counts for the grace; the live one polls
  const auto submitted = std::chrono::steady_clock::now();
  const auto id = c.run(R"({"input":{"after":"departure"}})");
  const auto st = c.status_until(id, [](const json::Document& d) { return status_of(d) == "COMPLETED"; }, 5s);
  CHECK(std::chrono::steady_clock::now() - submitted < time_budget(1s));
  CHECK(status_of(st) == "COMPLETED");
  CHECK(json::get_string(st, "workerId") == "live");
  CHECK(json::get_int(c.get("/v2/local/health")["jobs"], "retried", -1) == 0);
  second.signal(SIGTERM);
  CHECK(second.wait() == 0);
}

TEST_CASE("worker process: after a worker leaves by SIGKILL, the next job goes to a live worker at once") {
  departed_worker_gets_no_job(SIGKILL);
}

TEST_CASE("worker process: after a worker leaves by SIGTERM, the next job goes to a live worker at once") {
  departed_worker_gets_no_job(SIGTERM);
}

TEST_CASE("worker process: SIGTERM lets the running job finish and post its result") {
  Local local;
  Client c(local.server.url());
  ChildProcess worker(PODWORKER_WORKER_BINARY, {"--handler", "sleep"}, local.worker_env());
  const auto id = c.run(R"({"input":{"ms":2000,"step_ms":5}})");
  const auto running = c.status_until(id, [](const json::Document& d) {
    return status_of(d) == "IN_PROGRESS" && d.HasMember("output");
  });
  REQUIRE(status_of(running) == "IN_PROGRESS");
  worker.signal(SIGTERM);
  CHECK(worker.wait() == 0);
  const auto st = c.get("/v2/local/status/" + id);
  CHECK(status_of(st) == "COMPLETED");
  CHECK(json::to_string(st["output"]) == R"({"slept_ms":2000})");
}

TEST_CASE("worker process: --serve-api serves the job API and runs the jobs itself") {
  ChildProcess worker(PODWORKER_WORKER_BINARY,
                      {"--serve-api", "--api-port", "0", "--handler", "echo", "--", "--no-rate-limit"},
                      {"RUNPOD_LOG_LEVEL=WARN"});
  const auto line = worker.read_line_with("listening on ", 20s);
  REQUIRE(line.has_value());
  const auto url = line->substr(line->find("http://"));
  Client c(url);
  const auto st = c.post("/runsync", R"({"input":{"a":"b"}})");
  CHECK(status_of(st) == "COMPLETED");
  CHECK(json::to_string(st["output"]) == R"({"a":"b"})");
  worker.signal(SIGTERM);
  CHECK(worker.wait() == 0);
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// The CUDA backend is a module textgen opens when asked for CUDA (llm/cuda/module.h): a worker
// that never asks, here the echo handler of a build that has CUDA (CI's), maps no CUDA library.
TEST_CASE("worker process: an echo worker maps no CUDA runtime or cuBLAS, before or after a job") {
  Local local;
  Client c(local.server.url());
  ChildProcess worker(PODWORKER_WORKER_BINARY, {"--handler", "echo"}, local.worker_env());
  const auto st = c.wait_terminal(c.run(R"({"input":{"needs":"no GPU"}})"));
  REQUIRE(status_of(st) == "COMPLETED");
  const std::string proc = "/proc/" + std::to_string(worker.pid());
  const std::string maps = read_text(proc + "/maps");
  REQUIRE(!maps.empty());
  for (const char* library : {"libcudart", "libcublas", "libpodworker_cuda"}) {
    INFO(library);
    CHECK(maps.find(library) == std::string::npos);
  }
  const std::string status = read_text(proc + "/status");
  const auto rss = status.find("VmRSS:");
  if (rss != std::string::npos) MESSAGE("echo worker " << status.substr(rss, status.find('\n', rss) - rss));
  worker.signal(SIGTERM);
  CHECK(worker.wait() == 0);
}

}  // namespace podworker::test

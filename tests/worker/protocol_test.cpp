// The worker against production-shaped URL templates on a recording server: checks the exact
// requests it makes (paths, query parameters, headers, bodies) and how it reacts to each answer.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "../common/hostile_json.h"
#include "podworker/json.h"
#include "podworker/utf8.h"
#include "recording_server.h"
#include "test_support.h"

namespace podworker::test {
namespace {

constexpr const char* kGpu = "gpu=NVIDIA+H100+80GB";
constexpr const char* kPod = "pod-abc";
constexpr const char* kKey = "rp_SECRET_key";

// Plays RunPod's job API: job-take and job-stop long-poll until the test queues an answer;
// job-done answers with queued statuses (200 once they run out).
class Script {
 public:
  void push_take(Reply r) { push(takes_, std::move(r)); }
  void push_take_job(const std::string& body) { push_take({200, body}); }
  void push_stop(const std::string& body) { push(stops_, Reply{200, body}); }
  void push_done_status(int status) { push(done_statuses_, Reply{status, status >= 300 ? "{\"error\":\"no\"}" : ""}); }

  // The first n job-take requests are held until the server stops and never get a job.
  void hold_first_takes(int n) { held_takes_ = n; }

  Reply respond(const RecordedRequest& req, std::stop_token stop) {
    const std::string path = req.path();
    if (path.find("/job-take") != std::string::npos) {
      if (held_takes_.fetch_sub(1) > 0) {
        std::mutex m;
        std::condition_variable_any cv;
        std::unique_lock lock(m);
        cv.wait(lock, stop, [] { return false; });
        return {204, ""};
      }
      return wait_pop(takes_, stop);
    }
    if (path.find("/job-stop/") != std::string::npos) return wait_pop(stops_, stop);
    if (path.find("/job-done/") != std::string::npos) {
      std::lock_guard lock(mu_);
      if (done_statuses_.empty() || req.body.find("IN_PROGRESS") != std::string::npos) return {200, ""};
      Reply r = done_statuses_.front();
      done_statuses_.pop_front();
      return r;
    }
    return {200, ""};
  }

 private:
  void push(std::deque<Reply>& q, Reply r) {
    {
      std::lock_guard lock(mu_);
      q.push_back(std::move(r));
    }
    cv_.notify_all();
  }
  Reply wait_pop(std::deque<Reply>& q, std::stop_token stop) {
    std::unique_lock lock(mu_);
    if (!cv_.wait(lock, stop, [&] { return !q.empty(); })) return {204, ""};
    Reply r = std::move(q.front());
    q.pop_front();
    return r;
  }

  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Reply> takes_, stops_, done_statuses_;
  std::atomic<int> held_takes_{0};
};

struct Fixture {
  Script script;
  RecordingServer server{[this](const RecordedRequest& r, std::stop_token st) { return script.respond(r, st); }};

  WorkerOptions options() {
    WorkerOptions o = fast_options();
    const std::string v2 = server.url() + "/v2/ep123";
    o.take_url = v2 + "/job-take/$ID?" + kGpu;
    o.done_url = v2 + "/job-done/$RUNPOD_POD_ID/$ID?" + kGpu;
    o.stream_url = v2 + "/job-stream/$RUNPOD_POD_ID/$ID?" + kGpu;
    o.ping_url = v2 + "/ping/$RUNPOD_POD_ID?" + kGpu;
    o.worker_id = kPod;
    o.api_key = kKey;
    o.hostname = "host-1";
    return o;
  }

  static std::string done_path(const std::string& job) {
    return std::string("/v2/ep123/job-done/") + kPod + "/" + job;
  }
  // Final results (not progress updates) posted for `job`.
  std::vector<RecordedRequest> results(const std::string& job) {
    std::vector<RecordedRequest> out;
    for (auto& r : server.requests()) {
      if (r.path() == done_path(job) && r.body.find("\"IN_PROGRESS\"") == std::string::npos) out.push_back(r);
    }
    return out;
  }
  bool wait_results(const std::string& job, std::size_t n) {
    return server.wait_until([&](const std::vector<RecordedRequest>& all) {
      std::size_t count = 0;
      for (auto& r : all) {
        if (r.path() == done_path(job) && r.body.find("\"IN_PROGRESS\"") == std::string::npos) ++count;
      }
      return count >= n;
    });
  }
  // The target of the first job-take (or job-take-batch) request the worker sent; empty when none.
  std::string first_take_target() {
    for (const auto& r : server.requests()) {
      if (r.path().find("/job-take") != std::string::npos) return r.target;
    }
    return {};
  }
  std::size_t count_path(const std::string& needle) {
    std::size_t n = 0;
    for (auto& r : server.requests()) n += r.path().find(needle) != std::string::npos;
    return n;
  }
};

json::Document parse(const std::string& body) { return json::parse(body); }

}  // namespace

TEST_CASE("protocol: job-take, job-done, ping and job-stop requests are shaped like the SDK's") {
  Fixture f;
  f.script.push_take_job(R"({"id":"job-1","input":{"x":1},"webhook":"http://hook"})");
  RunningWorker w(f.options(), "echo");
  REQUIRE(f.wait_results("job-1", 1));
  REQUIRE(f.server.wait_until([&](auto& all) {
    int pings = 0, stops = 0;
    for (auto& r : all) {
      pings += r.path().find("/ping/") != std::string::npos;
      stops += r.path().find("/job-stop/") != std::string::npos;
    }
    return pings > 0 && stops > 0;
  }));
  w.stop();

  const auto all = f.server.requests();
  bool saw_take = false, saw_ping = false, saw_stop = false;
  for (const auto& r : all) {
    CHECK(r.header("authorization") == kKey);  // raw key, no "Bearer"
    if (r.path().find("/job-take/") != std::string::npos && !saw_take) {
      saw_take = true;
      CHECK(r.method == "GET");
      CHECK(r.target == std::string("/v2/ep123/job-take/pod-abc?") + kGpu + "&job_in_progress=0");
    }
    if (r.path().find("/ping/") != std::string::npos && !saw_ping) {
      saw_ping = true;
      CHECK(r.method == "GET");
      CHECK(r.target.rfind(std::string("/v2/ep123/ping/pod-abc?") + kGpu + "&", 0) == 0);
      CHECK(r.target.find("runpod_version=1.12.0") != std::string::npos);
    }
    if (r.path().find("/job-stop/") != std::string::npos && !saw_stop) {
      saw_stop = true;
      CHECK(r.method == "GET");
      CHECK(r.target == std::string("/v2/ep123/job-stop/pod-abc?") + kGpu);
    }
  }
  CHECK(saw_take);
  CHECK(saw_ping);
  CHECK(saw_stop);

  const auto done = f.results("job-1");
  REQUIRE(done.size() == 1);
  CHECK(done[0].method == "POST");
  CHECK(done[0].target == std::string("/v2/ep123/job-done/pod-abc/job-1?") + kGpu + "&isStream=false");
  CHECK(done[0].body == R"({"output":{"x":1}})");
  CHECK(done[0].header("x-request-id") == "job-1");
  CHECK(done[0].header("content-type") == "application/json");
}

TEST_CASE("protocol: a streaming job posts its chunks to job-stream, then isStream=true") {
  Fixture f;
  f.script.push_take_job(R"({"id":"job-2","input":{"text":"abcdef","chunk_size":2,"progress":false}})");
  auto o = f.options();
  o.return_aggregate_stream = true;
  RunningWorker w(o, "stream_echo");
  REQUIRE(f.wait_results("job-2", 1));
  w.stop();
  std::vector<std::string> chunks;
  for (const auto& r : f.server.requests()) {
    if (r.path().find("/job-stream/") == std::string::npos) continue;
    CHECK(r.target == std::string("/v2/ep123/job-stream/pod-abc/job-2?") + kGpu);
    CHECK(r.method == "POST");
    chunks.push_back(r.body);
  }
  // Strings yielded while a post is in flight share the next one; their concatenation is exact.
  std::string joined;
  for (const auto& body : chunks) joined += parse(body)["output"].GetString();
  CHECK(joined == "abcdef");
  const auto done = f.results("job-2");
  REQUIRE(done.size() == 1);
  CHECK(done[0].target == std::string("/v2/ep123/job-done/pod-abc/job-2?") + kGpu + "&isStream=true");
  CHECK(done[0].body == R"({"output":["ab","cd","ef"]})");
}

TEST_CASE("protocol: progress updates go to job-done as IN_PROGRESS") {
  Fixture f;
  f.script.push_take_job(R"({"id":"job-p","input":{"text":"abcd","chunk_size":2}})");
  RunningWorker w(f.options(), "stream_echo");
  REQUIRE(f.wait_results("job-p", 1));
  w.stop();
  // Latest wins and an update still unsent when the job ends is superseded by the result, so the
  // posts are an in-order subsequence of the updates, every one before the result.
  const std::vector<std::string> updates{R"({"status":"IN_PROGRESS","output":{"sent":2,"total":4}})",
                                         R"({"status":"IN_PROGRESS","output":{"sent":4,"total":4}})"};
  std::size_t next = 0;
  bool result_seen = false;
  for (const auto& r : f.server.requests()) {
    if (r.path() != Fixture::done_path("job-p")) continue;
    if (r.body.find("IN_PROGRESS") == std::string::npos) {
      result_seen = true;
      continue;
    }
    CHECK_FALSE(result_seen);
    CHECK(r.target.find("isStream=false") != std::string::npos);
    while (next < updates.size() && updates[next] != r.body) ++next;
    CHECK(next < updates.size());
  }
  CHECK(f.results("job-p")[0].body == R"({"output":[]})");
}

TEST_CASE("protocol: a handler exception becomes the double-encoded error report") {
  Fixture f;
  f.script.push_take_job(R"({"id":"job-3","input":{}})");
  RunningWorker w(f.options(), "throws");
  REQUIRE(f.wait_results("job-3", 1));
  w.stop();
  const auto body = parse(f.results("job-3")[0].body);
  REQUIRE(body.IsObject());
  REQUIRE(body["error"].IsString());
  CHECK_FALSE(body.HasMember("output"));
  const auto report = parse(body["error"].GetString());
  CHECK(std::string(report["error_type"].GetString()) == "std::runtime_error");
  CHECK(std::string(report["error_message"].GetString()) == "boom");
  CHECK(std::string(report["error_traceback"].GetString()).size() > 0);
  CHECK(std::string(report["hostname"].GetString()) == "host-1");
  CHECK(std::string(report["worker_id"].GetString()) == kPod);
  CHECK(std::string(report["runpod_version"].GetString()) == "1.12.0");
}

TEST_CASE("protocol: a returned error carries its extra output; refresh adds stopPod") {
  Fixture f;
  f.script.push_take_job(R"({"id":"job-4","input":{}})");
  {
    RunningWorker w(f.options(), "returns_error");
    REQUIRE(f.wait_results("job-4", 1));
  }
  CHECK(f.results("job-4")[0].body == R"({"error":"bad thing","output":{"partial":1}})");

  Fixture g;
  g.script.push_take_job(R"({"id":"job-5","input":{}})");
  RunningWorker w(g.options(), "refresh");
  REQUIRE(g.wait_results("job-5", 1));
  w.stop();
  CHECK(g.results("job-5")[0].body == R"({"output":"done","stopPod":true})");
}

TEST_CASE("protocol: results are retried on 5xx until delivered") {
  Fixture f;
  f.script.push_done_status(503);
  f.script.push_done_status(502);
  f.script.push_take_job(R"({"id":"job-6","input":"hi"})");
  RunningWorker w(f.options(), "echo");
  REQUIRE(f.wait_results("job-6", 3));
  w.stop();
  const auto done = f.results("job-6");
  REQUIRE(done.size() == 3);
  for (const auto& r : done) CHECK(r.body == R"({"output":"hi"})");
}

TEST_CASE("protocol: a result the endpoint refuses ends the job FAILED with the reason") {
  Fixture f;
  f.script.push_done_status(400);
  f.script.push_take_job(R"({"id":"job-7","input":"hi"})");
  RunningWorker w(f.options(), "echo");
  REQUIRE(f.wait_results("job-7", 2));
  w.stop();
  const auto done = f.results("job-7");
  REQUIRE(done.size() == 2);
  CHECK(done[0].body == R"({"output":"hi"})");
  const auto err = parse(done[1].body);
  REQUIRE(err["error"].IsString());
  CHECK(std::string(err["error"].GetString()).find("result could not be delivered (HTTP 400") == 0);
}

TEST_CASE("protocol: the stop channel cancels a running job and nothing is posted for it") {
  Fixture f;
  f.script.push_take_job(R"({"id":"job-s","input":{"ms":600000,"step_ms":5}})");
  RunningWorker w(f.options(), "sleep");
  // Running: its progress arrives, and the heartbeat names it.
  REQUIRE(f.server.wait_until([&](auto& all) {
    bool progress = false, pinged = false;
    for (auto& r : all) {
      progress |= r.path() == Fixture::done_path("job-s");
      pinged |= r.path().find("/ping/") != std::string::npos &&
                r.target.find("job_id=job-s&runpod_version=1.12.0") != std::string::npos;
    }
    return progress && pinged;
  }));
  CHECK(w.worker().held_jobs() == std::vector<std::string>{"job-s"});
  f.script.push_stop(R"({"jobsToStop":["job-s","not-mine"]})");
  // With concurrency 1 the next job-take is only sent once the stopped job has ended.
  REQUIRE(f.server.wait_until([&](auto& all) {
    int takes = 0;
    for (auto& r : all) takes += r.path().find("/job-take/") != std::string::npos;
    return takes >= 2;
  }));
  w.stop();
  CHECK(f.results("job-s").empty());
  for (const auto& r : f.server.requests()) {
    if (r.path().find("/job-take/") != std::string::npos) CHECK(r.target.find("job_in_progress=0") != std::string::npos);
  }
}

TEST_CASE("protocol: free slots are filled with one batch take") {
  Fixture f;
  f.script.push_take_job(R"([{"id":"b-1","input":1},{"id":"b-2","input":2}])");
  auto o = f.options();
  o.concurrency = 3;
  RunningWorker w(o, "echo");
  REQUIRE(f.wait_results("b-1", 1));
  REQUIRE(f.wait_results("b-2", 1));
  w.stop();
  CHECK(f.first_take_target() == std::string("/v2/ep123/job-take-batch/pod-abc?") + kGpu +
                                     "&batch_size=3&job_in_progress=0");
  CHECK(f.results("b-1")[0].body == R"({"output":1})");
  CHECK(f.results("b-2")[0].body == R"({"output":2})");
}

TEST_CASE("protocol: 429 and 5xx on job-take back off and retry; a job without input fails") {
  Fixture f;
  f.script.push_take({429, ""});
  f.script.push_take({500, "oops"});
  f.script.push_take({400, ""});
  f.script.push_take_job(R"({"id":"job-n"})");
  f.script.push_take_job(R"({"id":"job-8","input":[1,2]})");
  RunningWorker w(f.options(), "echo");
  REQUIRE(f.wait_results("job-8", 1));
  REQUIRE(f.wait_results("job-n", 1));
  w.stop();
  CHECK(f.count_path("/job-take/") >= 5);
  CHECK(f.results("job-8")[0].body == R"({"output":[1,2]})");
  CHECK(f.results("job-n")[0].body == R"({"error":"job has no \"input\""})");
}

TEST_CASE("protocol: a 5 MB yield is split into posts of at most 1 MB that reassemble exactly") {
  Fixture f;
  std::string text;
  for (int i = 0; text.size() < 5u * 1024 * 1024; ++i) text += "line " + std::to_string(i) + " \"quoted\" \\ é\n";
  json::Document job;
  job.SetObject();
  auto& a = job.GetAllocator();
  json::Value input(rapidjson::kObjectType);
  input.AddMember("text", json::string_value(text, a), a);
  input.AddMember("chunk_size", 0, a);
  input.AddMember("progress", false, a);
  job.AddMember("id", "job-big", a);
  job.AddMember("input", input, a);
  f.script.push_take_job(json::to_string(job));
  RunningWorker w(f.options(), "stream_echo");
  REQUIRE(f.wait_results("job-big", 1));
  w.stop();
  std::string joined;
  int posts = 0;
  for (const auto& r : f.server.requests()) {
    if (r.path().find("/job-stream/") == std::string::npos) continue;
    ++posts;
    CHECK(r.body.size() <= 1024u * 1024);
    const auto body = parse(r.body);
    joined.append(body["output"].GetString(), body["output"].GetStringLength());
  }
  CHECK(posts >= 5);
  CHECK(joined == text);
  CHECK(f.results("job-big")[0].body == R"({"output":[]})");
}

TEST_CASE("protocol: a chunk that cannot be split fails the job with a clear error") {
  Fixture f;
  f.script.push_take_job(R"({"id":"job-o","input":{"kind":"object","bytes":1100000}})");
  f.script.push_take_job(R"({"id":"job-a","input":{"kind":"array","bytes":2500000}})");
  RunningWorker w(f.options(), "yield_big");
  REQUIRE(f.wait_results("job-o", 1));
  REQUIRE(f.wait_results("job-a", 1));
  w.stop();
  const auto err = parse(f.results("job-o")[0].body);
  REQUIRE(err["error"].IsString());
  CHECK(std::string(err["error"].GetString()).find("cannot be split") != std::string::npos);
  // The array went out as sub-arrays, each post within the limit, elements in order.
  std::size_t elements = 0;
  for (const auto& r : f.server.requests()) {
    if (r.path() != "/v2/ep123/job-stream/pod-abc/job-a") continue;
    CHECK(r.body.size() <= 1024u * 1024);
    elements += parse(r.body)["output"].Size();
  }
  CHECK(elements == (2500000 + 1002) / 1003);
  CHECK(f.results("job-a")[0].body == R"({"output":[]})");
}

TEST_CASE("protocol: the handler's concurrency hook is consulted before each take") {
  Fixture f;
  f.script.push_take_job(R"({"id":"h-1","input":1})");
  RunningWorker w(f.options(), "two_at_once");
  REQUIRE(f.wait_results("h-1", 1));
  w.stop();
  CHECK(f.first_take_target() ==
        std::string("/v2/ep123/job-take-batch/pod-abc?") + kGpu + "&batch_size=2&job_in_progress=0");
}

TEST_CASE("protocol: each thread keeps its connection alive across requests") {
  Fixture f;
  for (int i = 0; i < 5; ++i) f.script.push_take_job(R"({"id":"k-)" + std::to_string(i) + R"(","input":1})");
  RunningWorker w(f.options(), "echo");
  for (int i = 0; i < 5; ++i) REQUIRE(f.wait_results("k-" + std::to_string(i), 1));
  w.stop();
  // Taker, job runner, stop channel and heartbeat: one connection each, however many requests.
  CHECK(f.server.requests().size() >= 11);
  CHECK(f.server.connections() <= 4);
}

TEST_CASE("protocol: on stop, a job still running after the grace period is cancelled silently") {
  Fixture f;
  f.script.push_take_job(R"({"id":"g-1","input":{"ms":600000,"step_ms":5}})");
  auto o = f.options();
  o.shutdown_grace = std::chrono::milliseconds(0);
  RunningWorker w(o, "sleep");
  REQUIRE(f.server.wait_until([&](auto& all) {
    for (auto& r : all) {
      if (r.path() == Fixture::done_path("g-1")) return true;  // progress: it is running
    }
    return false;
  }));
  w.stop();  // returns once the job was cancelled and the worker finalized
  CHECK(w.worker().held_jobs().empty());
  CHECK(f.results("g-1").empty());
}

TEST_CASE("protocol: a long poll the client gives up on is simply asked again") {
  Fixture f;
  f.script.hold_first_takes(3);  // the server sits on three polls past the client's patience
  f.script.push_take_job(R"({"id":"t-1","input":"late"})");
  auto o = f.options();
  o.long_poll_timeout = std::chrono::milliseconds(30);
  RunningWorker w(o, "echo");
  REQUIRE(f.wait_results("t-1", 1));
  w.stop();
  CHECK(f.count_path("/job-take/") >= 4);
  CHECK(f.results("t-1")[0].body == R"({"output":"late"})");
}

// RunPod relays whatever a client sent, so a job-take reply may hold an input nested far past the
// limit. Such a job used to crash the worker in the copy of the taken job (and again in each worker
// that took it after); now it is failed by id, and the worker carries on.
TEST_CASE(
    "protocol: a job nested 100,000 levels deep fails with an error naming the limit; the next "
    "runs") {
  const std::string limit_error =
      R"({"error":"job input nests deeper than the limit of 256 levels of objects and arrays"})";
  Fixture f;
  f.script.push_take_job(R"({"id":"deep-obj","input":{"x":)" +
                         nested_json(100'000, Nesting::objects) + "}}");
  f.script.push_take_job(R"({"id":"deep-arr","input":)" + nested_json(100'000, Nesting::arrays) +
                         "}");
  f.script.push_take_job(R"({"id":"after","input":{"n":1}})");
  // The deepest input the limit allows runs, and its output comes back whole.
  const std::string at_limit = nested_json(json::kMaxDepth, Nesting::mixed);
  f.script.push_take_job(R"({"id":"at-limit","input":)" + at_limit + "}");
  RunningWorker w(f.options(), "echo");
  REQUIRE(f.wait_results("at-limit", 1));
  w.stop();
  CHECK(f.results("deep-obj")[0].body == limit_error);
  CHECK(f.results("deep-arr")[0].body == limit_error);
  CHECK(f.results("deep-obj")[0].target ==
        std::string("/v2/ep123/job-done/pod-abc/deep-obj?") + kGpu + "&isStream=false");
  CHECK(f.results("after")[0].body == R"({"output":{"n":1}})");
  CHECK(f.results("at-limit")[0].body == R"({"output":)" + at_limit + "}");
}

TEST_CASE("protocol: in a batch, only the job nested too deep fails; the others run") {
  Fixture f;
  const std::string deep = nested_json(100'000, Nesting::mixed);
  f.script.push_take_job(R"([{"id":"b-1","input":1},{"id":"b-deep","input":{"a":)" + deep +
                         R"(},"webhook":)" + deep + R"(},{"id":"b-3","input":[3]}])");
  auto o = f.options();
  o.concurrency = 3;
  RunningWorker w(o, "echo");
  REQUIRE(f.wait_results("b-1", 1));
  REQUIRE(f.wait_results("b-deep", 1));
  REQUIRE(f.wait_results("b-3", 1));
  w.stop();
  CHECK(f.results("b-1")[0].body == R"({"output":1})");
  CHECK(f.results("b-deep")[0].body.find("nests deeper than the limit of 256 levels") !=
        std::string::npos);
  CHECK(f.results("b-3")[0].body == R"({"output":[3]})");
}

TEST_CASE(
    "protocol: stream_echo cuts on character boundaries, even with chunks below one character") {
  const std::string text = "a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80z\xf0\x9f\x98\x80";  // aé€😀z😀
  for (int chunk = 1; chunk <= 5; ++chunk) {
    CAPTURE(chunk);
    Fixture f;
    f.script.push_take_job(R"({"id":"s-1","input":{"text":")" + text + R"(","chunk_size":)" +
                           std::to_string(chunk) + R"(,"progress":false}})");
    auto o = f.options();
    o.return_aggregate_stream = true;  // the result lists the yields themselves
    RunningWorker w(o, "stream_echo");
    REQUIRE(f.wait_results("s-1", 1));
    w.stop();
    // The posts (yields merged while one is in flight) are valid UTF-8 and reassemble the text.
    std::string joined;
    for (const auto& r : f.server.requests()) {
      if (r.path().find("/job-stream/") == std::string::npos) continue;
      CHECK(utf8_valid(r.body));
      joined += json::get_string(json::parse(r.body), "output");  // parse refuses invalid UTF-8
    }
    CHECK(joined == text);
    const auto result = json::parse(f.results("s-1")[0].body);
    const auto& yields = result["output"];
    REQUIRE(yields.IsArray());
    CHECK(yields.Size() >= 6 / static_cast<std::size_t>(chunk));
    for (const auto& y : yields.GetArray()) {
      const std::string piece(y.GetString(), y.GetStringLength());
      CHECK_FALSE(piece.empty());
      // Whole characters only, and no more than one beyond the chunk size.
      CHECK(utf8_char_length(piece, 0) != 0);
      CHECK((piece.size() <= static_cast<std::size_t>(chunk) ||
             utf8_char_length(piece, 0) == piece.size()));
    }
  }
}

TEST_CASE("protocol: a handler's capacity is the default concurrency; an explicit one wins") {
  {
    Fixture f;
    f.script.push_take_job(R"({"id":"c-1","input":1})");
    RunningWorker w(f.options(), "capacity_three");
    REQUIRE(f.wait_results("c-1", 1));
    w.stop();
    CHECK(f.first_take_target() == std::string("/v2/ep123/job-take-batch/pod-abc?") + kGpu +
                                       "&batch_size=3&job_in_progress=0");
  }
  Fixture f;
  f.script.push_take_job(R"({"id":"c-2","input":1})");
  auto o = f.options();
  o.concurrency = 1;
  RunningWorker w(o, "capacity_three");
  REQUIRE(f.wait_results("c-2", 1));
  w.stop();
  CHECK(f.first_take_target() == std::string("/v2/ep123/job-take/pod-abc?") + kGpu + "&job_in_progress=0");
}

TEST_CASE("protocol: the handler learns why it was stopped: cancel, timeout, shutdown") {
  JobFacts& facts = last_job_facts();
  facts.ended = false;
  facts.reason = StopReason::none;
  SUBCASE("cancel through the stop channel: nothing posted") {
    Fixture f;
    f.script.push_take_job(R"({"id":"r-c","input":{},"retries":2})");
    RunningWorker w(f.options(), "stop_reason");
    REQUIRE(f.server.wait_until([&](auto&) { return w.worker().held_jobs().size() == 1; }));
    f.script.push_stop(R"({"jobsToStop":["r-c"]})");
    REQUIRE(f.server.wait_until([&](auto&) { return facts.ended.load(); }));
    w.stop();
    CHECK(facts.reason.load() == StopReason::cancelled);
    CHECK(facts.retries.load() == 2);
    CHECK_FALSE(facts.had_deadline.load());
    CHECK(f.results("r-c").empty());
  }
  SUBCASE("the worker's job timeout: the job fails saying so") {
    Fixture f;
    f.script.push_take_job(R"({"id":"r-t","input":{}})");
    auto o = f.options();
    o.job_timeout = std::chrono::milliseconds(300);
    RunningWorker w(o, "stop_reason");
    REQUIRE(f.wait_results("r-t", 1));
    w.stop();
    CHECK(facts.reason.load() == StopReason::timed_out);
    CHECK(facts.had_deadline.load());
    CHECK(facts.time_left_ms.load() > 0);
    CHECK(facts.time_left_ms.load() <= 300);
    CHECK(facts.retries.load() == 0);
    CHECK(f.results("r-t")[0].body == R"({"error":"job timed out: it ran past its 300 ms limit"})");
  }
  SUBCASE("a job's own policy.executionTimeout is its deadline") {
    Fixture f;
    f.script.push_take_job(R"({"id":"r-p","input":{},"policy":{"executionTimeout":250}})");
    auto o = f.options();
    o.job_timeout = std::chrono::milliseconds(600000);
    RunningWorker w(o, "stop_reason");
    REQUIRE(f.wait_results("r-p", 1));
    w.stop();
    CHECK(facts.reason.load() == StopReason::timed_out);
    CHECK(facts.time_left_ms.load() <= 250);
    CHECK(f.results("r-p")[0].body == R"({"error":"job timed out: it ran past its 250 ms limit"})");
  }
  SUBCASE("shutdown after the grace period: nothing posted") {
    Fixture f;
    f.script.push_take_job(R"({"id":"r-s","input":{}})");
    auto o = f.options();
    o.shutdown_grace = std::chrono::milliseconds(0);
    RunningWorker w(o, "stop_reason");
    REQUIRE(f.server.wait_until([&](auto&) { return w.worker().held_jobs().size() == 1; }));
    w.stop();
    CHECK(facts.ended.load());
    CHECK(facts.reason.load() == StopReason::shutdown);
    CHECK(f.results("r-s").empty());
  }
}

TEST_CASE("protocol: streaming is decided per job; a stream's returned value is its summary") {
  Fixture f;
  f.script.push_take_job(
      R"([{"id":"y-1","input":{"yield":true}},{"id":"y-2","input":{"yield":false}}])");
  auto o = f.options();
  o.concurrency = 2;
  RunningWorker w(o, "maybe_streams");
  REQUIRE(f.wait_results("y-1", 1));
  REQUIRE(f.wait_results("y-2", 1));
  w.stop();
  std::string streamed;
  for (const auto& r : f.server.requests()) {
    if (r.path().find("/job-stream/") != std::string::npos) {
      CHECK(r.path().find("/y-1") != std::string::npos);
      streamed += parse(r.body)["output"].GetString();
    }
  }
  CHECK(streamed == "ab");
  const auto y1 = f.results("y-1");
  CHECK(y1[0].target.find("isStream=true") != std::string::npos);
  CHECK(y1[0].body == R"({"output":{"summary":"two letters"}})");
  const auto y2 = f.results("y-2");
  CHECK(y2[0].target.find("isStream=false") != std::string::npos);
  CHECK(y2[0].body == R"({"output":{"summary":"two letters"}})");
}

TEST_CASE("protocol: a typed-input error fails the job with the field's message, no traceback") {
  Fixture f;
  f.script.push_take_job(R"({"id":"t-1","input":{"words_per_chunk":0}})");
  RunningWorker w(f.options(), "typed_input");
  REQUIRE(f.wait_results("t-1", 1));
  w.stop();
  CHECK(f.results("t-1")[0].body ==
        "{\"error\":\"input.words_per_chunk must be an integer \u2265 1\"}");
}

}  // namespace podworker::test

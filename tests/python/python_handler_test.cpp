// The `python` handler through the worker's local job runner (what --test-input runs): each
// handler kind, errors in the SDK's shape, a crashed interpreter replaced for the next job, a
// stream split and reassembled, concurrency_modifier, and a refused start() key.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <string>
#include <vector>

#include "podworker/handlers/python.h"
#include "podworker/json.h"
#include "podworker/worker.h"

namespace {

using namespace podworker;

// A python handler running `file` of tests/python_handlers, initialized.
std::unique_ptr<Handler> python_handler(const std::string& file) {
  HandlerRegistry registry;
  handlers::register_python(registry);
  auto handler = registry.create("python");
  WorkerOptions options;
  options.handler = "python";
  options.worker_id = "test-worker";
  options.setting_flags = {{"script", std::string(PODWORKER_PYTHON_HANDLERS) + "/" + file},
                           {"python_exe", "/usr/bin/python3"}};
  handler->init(make_handler_context(options, *handler));
  return handler;
}

LocalResult run(Handler& handler, const std::string& job, const WorkerOptions& options = {}) {
  return run_local_job(handler, json::parse(job), options);
}

std::string text(const LocalResult& r) {
  return json::to_string(r.body);
}

// generator_handler.py's text_of({"bytes": n}), written again here to check the reassembly.
std::string generated_text(std::size_t n) {
  const std::vector<std::string> alphabet = [] {
    std::vector<std::string> out;
    for (char c = 'a'; c <= 'z'; ++c) out.emplace_back(1, c);
    for (char c = '0'; c <= '9'; ++c) out.emplace_back(1, c);
    out.emplace_back("\u00e9");  // é
    out.emplace_back("\u2713");  // ✓
    return out;
  }();
  std::string out;
  for (std::size_t i = 0; i < n; ++i) out += alphabet[(i * 7 + i / 13) % alphabet.size()];
  return out;
}

}  // namespace

TEST_CASE("python handler: a sync handler's results, errors and exceptions") {
  auto h = python_handler("sync_handler.py");
  auto done = run(*h, R"({"input":{"echo":[1,"é"]},"webhook":"https://example.com"})");
  CHECK(done.ok);
  // The job dict as the SDK builds it: the job as taken, extra keys included.
  CHECK(text(done) == R"({"output":{"echo":[1,"é"],"keys":["id","input","webhook"]}})");

  auto refused = run(*h, R"({"input":{"error":"bad input"}})");
  CHECK_FALSE(refused.ok);
  CHECK(text(refused) == R"({"error":"bad input","output":{"partial":1}})");

  auto raised = run(*h, R"({"input":{"raise":"boom"}})");
  CHECK_FALSE(raised.ok);
  const auto report = json::parse(json::get_string(raised.body, "error"));
  CHECK(json::get_string(report, "error_type") == "<class 'ValueError'>");
  CHECK(json::get_string(report, "error_message") == "boom");
  CHECK(json::get_string(report, "runpod_version") == "1.12.0");
  CHECK(json::get_string(report, "error_traceback").find("sync_handler.py") != std::string::npos);

  auto refreshed = run(*h, R"({"input":{"refresh":true}})");
  CHECK(text(refreshed) == R"({"output":{"done":true},"stopPod":true})");
  h->finalize();
}

TEST_CASE("python handler: a crashed interpreter fails its job and a fresh one runs the next") {
  auto h = python_handler("sync_handler.py");
  auto crashed = run(*h, R"({"input":{"crash":"segv"}})");
  CHECK_FALSE(crashed.ok);
  CHECK(json::get_string(crashed.body, "error").find("was killed by signal 11") !=
        std::string::npos);
  CHECK(text(run(*h, R"({"input":{"echo":"again"}})")) ==
        R"({"output":{"echo":"again","keys":["id","input"]}})");
  auto exited = run(*h, R"({"input":{"crash":"exit"}})");
  CHECK(json::get_string(exited.body, "error").find("exited with status 7") != std::string::npos);
  CHECK(run(*h, R"({"input":{"echo":1}})").ok);
  h->finalize();
}

// Sockets the worker holds (Asio's and libcurl's carry no CLOEXEC) must not reach an interpreter
// started later, as a replacement is: it would keep the worker's port and connections open.
TEST_CASE("python handler: an interpreter started after a crash holds none of the worker's descriptors") {
  auto h = python_handler("sync_handler.py");
  // A descriptor without CLOEXEC, as a listening socket opened after the handler's start is, at a
  // number Python does not reach on its own.
  const int held = ::fcntl(STDERR_FILENO, F_DUPFD, 900);
  REQUIRE(held >= 900);
  CHECK_FALSE(run(*h, R"({"input":{"crash":"exit"}})").ok);
  const auto listed = run(*h, R"({"input":{"fds":true}})");
  REQUIRE(listed.ok);
  const auto& fds = listed.body["output"]["fds"];
  REQUIRE(fds.IsArray());
  bool inherited = false;
  for (const auto& fd : fds.GetArray()) inherited = inherited || fd.GetInt() == held;
  CHECK_FALSE(inherited);
  CHECK(fds.Size() < 16);  // stdio, the bridge's socket and Python's own few
  ::close(held);
  h->finalize();
}

TEST_CASE("python handler: generators stream; async handlers run concurrently") {
  auto gen = python_handler("generator_handler.py");
  CHECK(gen->streams());
  // 3 MB in three yields (the sender splits each into posts of at most 1 MB); the local run hands
  // back the chunks as yielded.
  auto big = run(*gen, R"({"input":{"bytes":3000000,"chunk":1000000}})");
  REQUIRE(big.ok);
  const json::Value& pieces = big.body["output"];
  REQUIRE(pieces.IsArray());
  std::string joined;
  for (const auto& p : pieces.GetArray()) joined.append(p.GetString(), p.GetStringLength());
  CHECK(pieces.Size() == 3);
  CHECK(joined == generated_text(3000000));
  auto failed = run(*gen, R"({"input":{"text":"abcdef","chunk":2,"fail_after":1}})");
  CHECK(json::get_string(failed.body, "error")
            .rfind("handler: failed after 1 pieces \ntraceback: ", 0) == 0);
  gen->finalize();

  auto agg = python_handler("async_generator_handler.py");
  CHECK(text(run(*agg, R"({"input":{"count":3}})")) == R"({"output":[{"i":0},{"i":1},{"i":2}]})");
  agg->finalize();

  // Four jobs at once, as concurrency_modifier asks: each waits until all four are running.
  auto together = python_handler("concurrent_handler.py");
  CHECK(together->concurrency(1) == 4);
  std::vector<std::future<LocalResult>> jobs;
  for (int n = 0; n < 4; ++n) {
    jobs.push_back(std::async(std::launch::async, [&, n] {
      return run(*together, R"({"input":{"n":)" + std::to_string(n) + "}}");
    }));
  }
  for (int n = 0; n < 4; ++n) {
    CHECK(text(jobs[n].get()) == R"({"output":{"together":true,"n":)" + std::to_string(n) + "}}");
  }
  together->finalize();
}

TEST_CASE("python handler: a job's deadline cancels it in Python, sync and async alike") {
  for (const char* file : {"async_handler.py", "sync_handler.py"}) {
    CAPTURE(file);
    const auto marker = std::filesystem::temp_directory_path() /
                        ("podworker-python-cancel-" + std::to_string(::getpid()) + ".txt");
    std::filesystem::remove(marker);
    auto h = python_handler(file);
    WorkerOptions options;
    options.job_timeout = std::chrono::milliseconds(300);
    const auto started = std::chrono::steady_clock::now();
    auto r = run(*h, R"({"input":{"sleep_s":60,"marker":")" + marker.string() + R"("}})", options);
    CHECK(json::get_string(r.body, "error") == "job timed out: it ran past its 300 ms limit");
    // The handler saw the stop (asyncio's CancelledError, or runpod.serverless.is_cancelled)
    // and returned long before its 60 s: the job's slot did not wait out cancel_grace_ms.
    CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(8));
    h->finalize();  // the bridge has ended: whatever the handler wrote is on disk
    std::ifstream in(marker);
    std::string seen;
    std::getline(in, seen);
    CHECK(seen == "cancelled");
    std::filesystem::remove(marker);
  }
}

TEST_CASE("python handler: a start() key podworker does not implement stops the start, named") {
  try {
    python_handler("refused_config.py");
    FAIL("init() accepted rp_debugger");
  } catch (const std::exception& e) {
    CHECK(std::string(e.what()).find("does not implement 'rp_debugger'") != std::string::npos);
  }
}

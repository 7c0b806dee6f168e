// Helpers shared by the worker tests: test handlers and a worker running on its own thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "podworker/handler.h"
#include "podworker/handlers/basic.h"
#include "podworker/worker.h"

namespace podworker::test {

// What the "stop_reason" handler saw of its last job.
struct JobFacts {
  std::atomic<StopReason> reason{StopReason::none};
  std::atomic<bool> had_deadline{false};
  std::atomic<long long> time_left_ms{-1};
  std::atomic<int> retries{-1};
  std::atomic<bool> ended{false};
};
inline JobFacts& last_job_facts() {
  static JobFacts facts;
  return facts;
}

// A handler's own function that throws: the error report's traceback must name it.
[[gnu::noinline]] inline void parse_the_widget(const json::Value& input) {
  if (!input.IsObject() || !input.HasMember("widget"))
    throw std::runtime_error("no widget in the input");
}

// The built-in handlers plus a few that only tests need.
inline HandlerRegistry& test_registry() {
  static HandlerRegistry registry = [] {
    HandlerRegistry r;
    handlers::register_basic(r);
    r.add("throws", plain_handler([](Job&) -> Output { throw std::runtime_error("boom"); }));
    r.add("returns_error", plain_handler([](Job&) {
            json::Document extra;
            extra.SetObject();
            extra.AddMember("partial", 1, extra.GetAllocator());
            return Output::error("bad thing", std::move(extra));
          }));
    r.add("refresh", plain_handler([](Job& job) {
            job.request_refresh();
            return Output::ok("done");
          }));
    // Configured for 1 job at a time, asks for 2: the concurrency hook.
    struct Two final : Handler {
      int concurrency(int configured) override { return configured + 1; }
      Output execute(Job& job, Emitter&) override { return Output::ok(json::copy(job.input())); }
    };
    r.add<Two>("two_at_once");
    // Holds 3 jobs at once, like a batching engine: the worker's default concurrency.
    struct Three final : Handler {
      int capacity() const override { return 3; }
      Output execute(Job& job, Emitter&) override { return Output::ok(json::copy(job.input())); }
    };
    r.add<Three>("capacity_three");
    r.add("throws_deep", plain_handler([](Job& job) {
            parse_the_widget(job.input());
            return Output::ok("widget");
          }));
    // Runs until stopped (or 60 s), recording why it was stopped and what it knew of the job.
    r.add("stop_reason", plain_handler([](Job& job) {
            JobFacts& facts = last_job_facts();
            facts.ended = false;
            facts.had_deadline = job.deadline().has_value();
            facts.time_left_ms = job.time_left() ? job.time_left()->count() : -1;
            facts.retries = job.retry_count();
            std::mutex m;
            std::condition_variable_any cv;
            std::unique_lock lock(m);
            cv.wait_for(lock, job.stop_token(), std::chrono::seconds(60), [] { return false; });
            facts.reason = job.stop_reason();
            facts.ended = true;
            return Output::ok(std::string(stop_reason_name(job.stop_reason())));
          }));
    // Not a streaming handler, yet a job asking {"yield": true} streams; either way it returns
    // a summary {"summary": "..."}.
    struct MaybeStreams final : Handler {
      Output execute(Job& job, Emitter& out) override {
        if (json::get_bool(job.input(), "yield", false)) {
          out.yield("a");
          out.yield("b");
        }
        json::Document summary(rapidjson::kObjectType);
        summary.AddMember("summary", "two letters", summary.GetAllocator());
        return Output::ok(std::move(summary));
      }
    };
    r.add<MaybeStreams>("maybe_streams");
    // Reads {"words_per_chunk": integer >= 1} with the typed input helpers.
    r.add("typed_input", plain_handler([](Job& job) {
            const InputReader in(job.input());
            const auto n = in.integer("words_per_chunk", 3, 1);
            return Output::ok(std::to_string(n));
          }));
    r.add("yield_big", streaming_handler([](Job& job, Emitter& out) {
            // input: {"kind": "object" | "array", "bytes": N}
            const auto kind = json::get_string(job.input(), "kind");
            const auto bytes = static_cast<std::size_t>(json::get_int(job.input(), "bytes", 0));
            json::Document v;
            auto& a = v.GetAllocator();
            const std::string piece(1000, 'x');
            if (kind == "array") {
              v.SetArray();
              for (std::size_t n = 0; n < bytes; n += piece.size() + 3) v.PushBack(json::string_value(piece, a), a);
            } else {
              v.SetObject();
              v.AddMember("blob", json::string_value(std::string(bytes, 'y'), a), a);
            }
            out.yield(v);
          }));
    return r;
  }();
  return registry;
}

// Runs Worker::run() on a thread; stops and joins it when destroyed.
class RunningWorker {
 public:
  RunningWorker(WorkerOptions options, const std::string& handler)
      : handler_(test_registry().create(handler)), worker_(std::move(options), *handler_),
        thread_([this] { worker_.run(); }) {}
  ~RunningWorker() { stop(); }
  void stop() {
    worker_.stop();
    if (thread_.joinable()) thread_.join();
  }
  Worker& worker() { return worker_; }

 private:
  std::unique_ptr<Handler> handler_;
  Worker worker_;
  std::jthread thread_;
};

// Test timings: everything short so failures and retries resolve in milliseconds.
inline WorkerOptions fast_options() {
  WorkerOptions o;
  o.connect_timeout = std::chrono::milliseconds(2000);
  o.request_timeout = std::chrono::milliseconds(5000);
  o.long_poll_timeout = std::chrono::milliseconds(30000);
  o.backoff_initial = std::chrono::milliseconds(5);
  o.backoff_max = std::chrono::milliseconds(40);
  o.rate_limited_backoff = std::chrono::milliseconds(10);
  o.min_poll_interval = std::chrono::milliseconds(0);
  o.ping_interval = std::chrono::milliseconds(50);
  o.shutdown_grace = std::chrono::milliseconds(20000);
  return o;
}

}  // namespace podworker::test

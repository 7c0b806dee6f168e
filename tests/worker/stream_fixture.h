// The stream tests' setting: a recording server playing RunPod's job API behind a DelayProxy, and
// a worker running one test handler against it. Test handlers talk to the test through Gates.
#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>

#include "delay_proxy.h"
#include "recording_server.h"
#include "test_support.h"

namespace podworker::test {

// A flag one side opens and the other waits for (on its stop token: a server that stops ends the
// wait). Synchronisation for tests, never a sleep.
class Gate {
 public:
  void open() {
    {
      std::lock_guard lock(mu_);
      open_ = true;
    }
    cv_.notify_all();
  }
  bool wait(std::stop_token stop = {}) {
    std::unique_lock lock(mu_);
    return cv_.wait(lock, stop, [&] { return open_; });
  }
  bool is_open() {
    std::lock_guard lock(mu_);
    return open_;
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  bool open_ = false;
};

class StreamFixture {
 public:
  // Decides the answer to a stream or progress post; the default answers 200 at once.
  using PostHook = std::function<Reply(const RecordedRequest&, std::stop_token)>;

  explicit StreamFixture(std::chrono::milliseconds rtt = std::chrono::milliseconds(20))
      : proxy_(server_.port(), std::chrono::duration_cast<std::chrono::microseconds>(rtt) / 2) {}

  PostHook on_stream;
  PostHook on_progress;
  PostHook on_result;

  // One job for the worker's first take; later takes wait.
  void queue_job(const std::string& job_json) {
    std::lock_guard lock(mu_);
    jobs_.push_back(job_json);
    cv_.notify_all();
  }
  void queue_stop(const std::string& job_id) {
    std::lock_guard lock(mu_);
    stops_.push_back(R"({"jobsToStop":[")" + job_id + R"("]})");
    cv_.notify_all();
  }

  WorkerOptions options() const {
    WorkerOptions o = fast_options();
    const std::string v2 = proxy_.url() + "/v2/ep";
    o.take_url = v2 + "/job-take/$ID";
    o.done_url = v2 + "/job-done/$RUNPOD_POD_ID/$ID";
    o.stream_url = v2 + "/job-stream/$RUNPOD_POD_ID/$ID";
    o.ping_url = "";
    o.worker_id = "pod";
    return o;
  }

  static bool is_stream(const RecordedRequest& r) {
    return r.path().find("/job-stream/") != std::string::npos;
  }
  static bool is_progress(const RecordedRequest& r) {
    return r.path().find("/job-done/") != std::string::npos &&
           r.body.find("\"IN_PROGRESS\"") != std::string::npos;
  }
  static bool is_result(const RecordedRequest& r) {
    return r.path().find("/job-done/") != std::string::npos && !is_progress(r);
  }

  std::vector<RecordedRequest> requests(bool (*which)(const RecordedRequest&)) const {
    std::vector<RecordedRequest> out;
    for (auto& r : server_.requests()) {
      if (which(r)) out.push_back(r);
    }
    return out;
  }
  bool wait_result() const {
    return server_.wait_until([](const std::vector<RecordedRequest>& all) {
      for (auto& r : all) {
        if (is_result(r)) return true;
      }
      return false;
    });
  }
  RecordingServer& server() { return server_; }
  DelayProxy& proxy() { return proxy_; }

 private:
  Reply respond(const RecordedRequest& r, std::stop_token stop) {
    const std::string path = r.path();
    if (path.find("/job-take/") != std::string::npos) return pop(jobs_, stop);
    if (path.find("/job-stop/") != std::string::npos) return pop(stops_, stop);
    if (is_stream(r)) return on_stream ? on_stream(r, stop) : Reply{200, ""};
    if (is_progress(r)) return on_progress ? on_progress(r, stop) : Reply{200, ""};
    if (is_result(r)) return on_result ? on_result(r, stop) : Reply{200, ""};
    return {200, ""};
  }
  Reply pop(std::deque<std::string>& q, std::stop_token stop) {
    std::unique_lock lock(mu_);
    if (!cv_.wait(lock, stop, [&] { return !q.empty(); })) return {204, ""};
    Reply reply{200, q.front()};
    q.pop_front();
    return reply;
  }

  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<std::string> jobs_, stops_;
  // Declared after the hooks and queues it calls into, so it stops (joining its threads) first.
  RecordingServer server_{
      [this](const RecordedRequest& r, std::stop_token st) { return respond(r, st); }};
  DelayProxy proxy_;
};

// Runs Worker::run() with `handler` on a thread; stops and joins it when destroyed.
class WorkerThread {
 public:
  WorkerThread(WorkerOptions options, Handler& handler)
      : worker_(std::move(options), handler), thread_([this] { worker_.run(); }) {}
  ~WorkerThread() { stop(); }
  void stop() {
    worker_.stop();
    if (thread_.joinable()) thread_.join();
  }
  Worker& worker() { return worker_; }

 private:
  Worker worker_;
  std::jthread thread_;
};

}  // namespace podworker::test

// One running bridge process and its reader: routes the frames it sends to the job waiting for
// them, and when the process dies, ends every job it was running with why.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "bridge_process.h"
#include "podworker/json.h"

namespace podworker::handlers::python {

// What handler.py passed to runpod.serverless.start(), as the bridge's ready frame says.
struct BridgeConfig {
  std::string kind;  // sync, generator, async, async_generator
  bool return_aggregate_stream = false;
  bool refresh_worker = false;
  bool concurrency_modifier = false;
  std::string python_version;
};

// The frames of one job, in order; closed (with a reason) when the bridge died.
class JobChannel {
 public:
  struct Frame {
    json::Document doc;
    std::size_t bytes = 0;  // the frame's length, acknowledged for stream frames
  };
  enum class Wait { frame, closed, stopped, timed_out };

  void push(Frame frame);
  void close(std::string reason);
  // Waits for the next frame until `stop` (when not yet seen) or `deadline`.
  Wait next(Frame& out, std::stop_token stop,
            std::optional<std::chrono::steady_clock::time_point> deadline);
  const std::string& closed_reason() const { return reason_; }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Frame> frames_;
  bool closed_ = false;
  std::string reason_;
};

class BridgeSession {
 public:
  // Starts the process and waits for its ready frame (up to `start_timeout`). Throws
  // std::runtime_error with the bridge's own message when handler.py fails to start.
  BridgeSession(const BridgeCommand& command, std::chrono::milliseconds start_timeout);
  ~BridgeSession();
  BridgeSession(const BridgeSession&) = delete;
  BridgeSession& operator=(const BridgeSession&) = delete;

  const BridgeConfig& config() const { return config_; }
  bool alive() const { return alive_.load(); }

  // A channel for job `seq`, registered before its job frame is sent.
  std::shared_ptr<JobChannel> open(std::uint64_t seq);
  void forget(std::uint64_t seq);
  bool send(const json::Value& frame);
  // concurrency_modifier(current), or nullopt when the bridge does not answer within `timeout`.
  std::optional<int> ask_concurrency(int current, std::chrono::milliseconds timeout);

 private:
  void read_loop();
  void on_death(const std::string& why);

  BridgeProcess process_;
  BridgeConfig config_;
  std::atomic<bool> alive_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  std::optional<std::string> fatal_;  // a start the bridge refused, or its death before ready
  std::map<std::uint64_t, std::shared_ptr<JobChannel>> channels_;
  std::mutex ask_mu_;  // one concurrency question at a time
  std::optional<int> answer_;
  std::jthread reader_;  // last: joined before the members above go
};

}  // namespace podworker::handlers::python

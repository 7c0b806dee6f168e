// One Redis connection driven by its own thread, for RedisStore's asynchronous operations.
// Commands from any thread queue up; the thread writes everything queued in one go and reads the
// replies in order (pipelining). N requests waiting for Redis at once then cost one write and one
// read, not N round trips each holding a thread of the caller, and Redis reads them in one pass.
// Callbacks run on the pipeline's thread in command order; they must be quick and must not wait
// for another command (they may send one).
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "redis_connection.h"

namespace podworker::endpoint {

class RedisPipeline {
 public:
  // (the reply, nullptr), or (null, the RedisError the command failed with: the connection broke,
  // or the pipeline is closed). An error reply (-ERR ...) is a reply.
  using Callback = std::function<void(RedisReply, std::exception_ptr)>;

  // Connects lazily, on the first command (and again after a broken connection).
  RedisPipeline(RedisAddress address, std::chrono::milliseconds timeout);
  ~RedisPipeline();
  RedisPipeline(const RedisPipeline&) = delete;
  RedisPipeline& operator=(const RedisPipeline&) = delete;

  void send(std::vector<std::string> args, Callback done);
  // The same, for a caller that keeps the arguments (to send them again).
  void send(std::shared_ptr<const std::vector<std::string>> args, Callback done);
  // Finishes the batch in flight, fails every command still queued, and fails new ones at once.
  void close();

 private:
  struct Command {
    std::shared_ptr<const std::vector<std::string>> args;
    Callback done;
  };
  void loop(std::stop_token stop);
  void run_batch(std::deque<Command>& batch);

  const RedisAddress address_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<Command> queue_;
  bool closed_ = false;
  std::unique_ptr<RedisConnection> connection_;  // the pipeline thread's only
  std::jthread thread_;                          // last: joined before what it uses goes
};

}  // namespace podworker::endpoint

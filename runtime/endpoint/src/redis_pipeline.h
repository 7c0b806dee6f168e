// One Redis connection driven by its own thread, for RedisStore's asynchronous operations.
// Commands from any thread queue up; the thread writes everything queued in one go and reads the
// replies in order (pipelining). N requests waiting for Redis at once then cost one write and one
// read, not N round trips each holding a thread of the caller, and Redis reads them in one pass.
// Writing does not wait for the replies of what is in flight: commands queued meanwhile go out at
// once, so Redis never idles while a batch's replies are being read, and a command does not wait
// for a whole earlier batch to come back before it is even sent.
// Callbacks run on the pipeline's thread in command order; they must be quick and must not wait
// for another command (they may send one).
#pragma once

#include <chrono>
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
  // Sends `fresh` (connecting first when there is no connection) and moves it to `in_flight`.
  void write(std::deque<Command>& fresh, std::deque<Command>& in_flight);
  // Completes the commands of `in_flight` whose replies are in, in order.
  void complete_replies(std::deque<Command>& in_flight);
  // With `wakeable`, waits for the connection to be readable or for a new command; without, only
  // looks. Reads what came. Throws RedisError when no reply came within the timeout since `since`.
  void wait_for_replies(bool wakeable, std::chrono::steady_clock::time_point since);
  // True when nothing is queued: the thread then sleeps in poll(), and send() wakes it.
  bool going_to_sleep();
  const RedisAddress address_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::deque<Command> queue_;
  bool closed_ = false;
  bool sleeping_ = false;  // the thread waits in poll(): a new command signals wake_
  WakeFd wake_;
  std::unique_ptr<RedisConnection> connection_;  // the pipeline thread's only
  std::jthread thread_;                          // last: joined before what it uses goes
};

}  // namespace podworker::endpoint

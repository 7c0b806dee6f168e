// One Redis connection shared by every caller of RedisStore's asynchronous operations, with one
// thread that reads the replies in order (pipelining). N requests waiting for Redis at once then
// cost a few writes and one read, not N round trips each holding a thread of the caller.
// A command is written by the thread that sends it, straight onto the socket: handing it to the
// reading thread would cost a wake-up of that thread (two thread switches) per command, which on a
// loaded machine cost more than the write. Writers combine: a command sent while another caller is
// writing is appended to what that caller writes next, so a burst still goes out in few writes and
// Redis reads it in one pass. Only the first command (and the first after a broken connection)
// goes through the thread, which connects.
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
  // Finishes the commands in flight, fails every command still queued, and fails new ones at once.
  void close();

 private:
  using Clock = std::chrono::steady_clock;
  struct Command {
    std::string wire;  // RESP; emptied once it is in out_ or written
    Callback done;
    Clock::time_point sent;
  };
  void loop(std::stop_token stop);
  // Holds mu_ (in `lock`), with writing_ just set by this caller: writes out_ until it stays empty,
  // releasing the lock during each write; a failed write shuts the socket down for the reader.
  void write_out(std::unique_lock<std::mutex>& lock);
  // The thread: connects when there is no connection, then puts queue_ on the wire.
  void write_queued();
  // Completes the commands whose replies are in, in order.
  void complete_replies();
  // Waits for replies (or a command queued for the thread) and reads what came. Throws RedisError
  // when the oldest command in flight has had no reply for the timeout.
  void wait_for_replies(bool wake_for_queue);
  // After a broken connection: fails every command in flight or queued, drops the connection.
  void tear_down(const std::string& why);

  const RedisAddress address_;
  const std::chrono::milliseconds timeout_;
  std::mutex mu_;
  std::condition_variable written_;  // writing_ went false (tear_down() waits for it)
  std::deque<Command> queue_;        // waiting for the thread: no connection yet
  std::deque<Command> in_flight_;    // on the wire or in out_, in that order: replies owed
  std::string out_;                  // bytes of in_flight_'s last commands, not written yet
  bool closed_ = false;
  bool writable_ = false;  // connection_ is up: send() writes itself, no queue_
  bool writing_ = false;   // a caller is writing out_ (and keeps connection_ alive meanwhile)
  bool sleeping_ = false;  // the thread waits in poll(): a command queued for it signals wake_
  WakeFd wake_;
  // Made and dropped by the thread; written to by the caller that holds writing_, read by the
  // thread alone.
  std::unique_ptr<RedisConnection> connection_;
  Clock::time_point progress_{};  // the thread's: the last reply read
  std::jthread thread_;           // last: joined before what it uses goes
};

}  // namespace podworker::endpoint

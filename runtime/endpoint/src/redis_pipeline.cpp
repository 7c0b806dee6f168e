#include "redis_pipeline.h"

#include <poll.h>

#include <algorithm>

#include "podworker/log.h"
#include "podworker/thread_name.h"

namespace podworker::endpoint {

namespace {

// The error is moved on, never shared: the thread that completes keeps no reference to an
// exception the caller's thread may read and destroy (see RedisStore::wait()).
void complete(RedisPipeline::Callback& done, RedisReply reply, std::exception_ptr error) noexcept {
  try {
    done(std::move(reply), std::move(error));
  } catch (const std::exception& e) {
    log::error(std::string("redis pipeline: a completion threw: ") + e.what());
  } catch (...) {
    log::error("redis pipeline: a completion threw");
  }
}

std::exception_ptr closed_error(const RedisAddress& address) {
  return std::make_exception_ptr(RedisError("redis " + address.url() + ": store closed"));
}

}  // namespace

RedisPipeline::RedisPipeline(RedisAddress address, std::chrono::milliseconds timeout)
    : address_(std::move(address)), timeout_(timeout) {
  thread_ = std::jthread([this](std::stop_token stop) {
    name_this_thread("pw-redis-reply");
    loop(std::move(stop));
  });
}

RedisPipeline::~RedisPipeline() {
  close();
}

void RedisPipeline::send(std::vector<std::string> args, Callback done) {
  send(std::make_shared<const std::vector<std::string>>(std::move(args)), std::move(done));
}

void RedisPipeline::send(std::shared_ptr<const std::vector<std::string>> args, Callback done) {
  std::string wire;
  try {
    wire = RedisConnection::format(*args);
  } catch (const RedisError&) {
    return complete(done, nullptr, std::current_exception());
  }
  std::unique_lock lock(mu_);
  if (closed_) {
    lock.unlock();
    return complete(done, nullptr, closed_error(address_));
  }
  if (!writable_) {
    queue_.push_back({std::move(wire), std::move(done), Clock::now()});
    if (sleeping_) {
      sleeping_ = false;
      wake_.signal();
    }
    return;
  }
  // In flight before it is written: its reply cannot come before, and the reader finds it there.
  in_flight_.push_back({{}, std::move(done), Clock::now()});
  if (out_.empty()) {
    out_.swap(wire);
  } else {
    out_ += wire;
  }
  // Another caller is writing: it writes this too, right after what it has.
  if (writing_) return;
  writing_ = true;
  write_out(lock);
}

void RedisPipeline::write_out(std::unique_lock<std::mutex>& lock) {
  RedisConnection* const c = connection_.get();
  std::string batch;
  bool ok = true;
  while (ok && !out_.empty()) {
    batch.clear();
    batch.swap(out_);
    lock.unlock();
    ok = c->write_all(batch);
    lock.lock();
  }
  if (!ok) {
    // The reader sees the socket end and fails what is in flight (tear_down()).
    out_.clear();
    c->shut_down();
  }
  writing_ = false;
  written_.notify_all();
}

void RedisPipeline::close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
  }
  thread_.request_stop();
  wake_.signal();
  if (thread_.joinable()) thread_.join();
  std::deque<Command> left;
  {
    std::unique_lock lock(mu_);
    // A caller may still be finishing its write (its reply is in already).
    written_.wait(lock, [&] { return !writing_; });
    left.swap(queue_);
  }
  for (Command& c : left) complete(c.done, nullptr, closed_error(address_));
}

void RedisPipeline::write_queued() {
  {
    std::lock_guard lock(mu_);
    if (queue_.empty()) return;
  }
  if (!connection_) {
    // Connecting blocks: not under the lock, so senders keep queueing meanwhile.
    auto c = std::make_unique<RedisConnection>(address_, timeout_);
    std::lock_guard lock(mu_);
    connection_ = std::move(c);
  }
  std::unique_lock lock(mu_);
  const auto now = Clock::now();
  for (Command& c : queue_) {
    out_ += c.wire;
    c.wire.clear();
    c.sent = now;
    in_flight_.push_back(std::move(c));
  }
  queue_.clear();
  // From here on senders write themselves, after these (same lock: the order holds).
  writable_ = true;
  if (!writing_) {
    writing_ = true;
    write_out(lock);
  }
}

void RedisPipeline::complete_replies() {
  while (connection_) {
    RedisReply reply = connection_->buffered_reply();
    if (!reply) return;
    Command c;
    {
      std::lock_guard lock(mu_);
      if (in_flight_.empty())
        throw RedisError("redis " + address_.url() + ": a reply to no command");
      c = std::move(in_flight_.front());
      in_flight_.pop_front();
    }
    progress_ = Clock::now();
    complete(c.done, std::move(reply), nullptr);
  }
}

void RedisPipeline::wait_for_replies(bool wake_for_queue) {
  bool idle = true;
  Clock::time_point oldest{};
  {
    std::lock_guard lock(mu_);
    // A command for the thread to write (and maybe connect for) comes first.
    if (wake_for_queue && !queue_.empty()) return;
    idle = in_flight_.empty();
    if (!idle) oldest = in_flight_.front().sent;
    sleeping_ = true;
  }
  int wait_ms = -1;  // no connection: only a queued command (wake_) can come
  if (!idle) {
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(std::max(progress_, oldest) +
                                                                   timeout_ - Clock::now());
    if (left.count() <= 0) {
      throw RedisError("redis " + address_.url() + ": no reply within " +
                       std::to_string(timeout_.count()) + " ms");
    }
    wait_ms = static_cast<int>(left.count());
  } else if (connection_) {
    // A command written meanwhile by its caller is not seen here until the next look: looking
    // again after a timeout bounds a silent server's detection to twice the timeout.
    wait_ms = static_cast<int>(timeout_.count());
  }
  pollfd fds[2] = {{wake_.fd(), POLLIN, 0}, {-1, POLLIN, 0}};
  nfds_t count = 1;
  if (connection_) {
    fds[1].fd = connection_->fd();
    count = 2;
  }
  ::poll(fds, count, wait_ms);
  // An idle connection that becomes readable has been closed by the server: read_some() throws.
  if (count == 2 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) != 0) connection_->read_some();
  if ((fds[0].revents & POLLIN) != 0) wake_.drain();
}

void RedisPipeline::tear_down(const std::string& why) {
  std::deque<Command> failed;
  {
    std::unique_lock lock(mu_);
    writable_ = false;
    // A caller blocked in its write returns at once; the connection lives until it has.
    if (connection_) connection_->shut_down();
    written_.wait(lock, [&] { return !writing_; });
    failed.swap(in_flight_);
    for (Command& c : queue_) failed.push_back(std::move(c));
    queue_.clear();
    out_.clear();
    connection_.reset();
  }
  // Those commands may or may not have run, which their callers learn as StoreUnavailable. The
  // next command connects afresh. Each caller gets an exception of its own (complete()).
  for (Command& c : failed) complete(c.done, nullptr, std::make_exception_ptr(RedisError(why)));
}

void RedisPipeline::loop(std::stop_token stop) {
  for (;;) {
    try {
      if (stop.stop_requested()) {
        // The replies in flight are read; what is queued, close() fails.
        for (;;) {
          complete_replies();
          {
            std::lock_guard lock(mu_);
            if (in_flight_.empty()) return;
          }
          wait_for_replies(false);
        }
      }
      write_queued();
      complete_replies();
      wait_for_replies(true);
    } catch (const RedisError& e) {
      tear_down(e.what());
      if (stop.stop_requested()) return;
    }
  }
}

}  // namespace podworker::endpoint

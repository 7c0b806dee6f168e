#include "redis_pipeline.h"

#include <poll.h>

#include <algorithm>

#include "podworker/log.h"

namespace podworker::endpoint {

namespace {

// Bounds one write: a burst of very many commands goes out in several batches.
constexpr std::size_t kMaxBatch = 512;

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
  thread_ = std::jthread([this](std::stop_token stop) { loop(std::move(stop)); });
}

RedisPipeline::~RedisPipeline() {
  close();
}

void RedisPipeline::send(std::vector<std::string> args, Callback done) {
  send(std::make_shared<const std::vector<std::string>>(std::move(args)), std::move(done));
}

void RedisPipeline::send(std::shared_ptr<const std::vector<std::string>> args, Callback done) {
  {
    std::lock_guard lock(mu_);
    if (!closed_) {
      queue_.push_back({std::move(args), std::move(done)});
      if (sleeping_) {
        sleeping_ = false;
        wake_.signal();
      }
      return;
    }
  }
  complete(done, nullptr, closed_error(address_));
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
    std::lock_guard lock(mu_);
    left.swap(queue_);
  }
  for (Command& c : left) complete(c.done, nullptr, closed_error(address_));
}

bool RedisPipeline::going_to_sleep() {
  std::lock_guard lock(mu_);
  sleeping_ = queue_.empty();
  return sleeping_;
}

void RedisPipeline::write(std::deque<Command>& fresh, std::deque<Command>& in_flight) {
  if (!connection_ || connection_->broken()) {
    connection_.reset();
    connection_ = std::make_unique<RedisConnection>(address_, timeout_);
  }
  std::vector<std::string_view> argv;
  for (const Command& c : fresh) {
    argv.assign(c.args->begin(), c.args->end());
    connection_->append(argv);
  }
  connection_->flush();
  while (!fresh.empty()) {
    in_flight.push_back(std::move(fresh.front()));
    fresh.pop_front();
  }
}

void RedisPipeline::complete_replies(std::deque<Command>& in_flight) {
  while (!in_flight.empty()) {
    RedisReply reply = connection_->buffered_reply();
    if (!reply) return;
    Command c = std::move(in_flight.front());
    in_flight.pop_front();
    complete(c.done, std::move(reply), nullptr);
  }
}

void RedisPipeline::wait_for_replies(bool wakeable, std::chrono::steady_clock::time_point since) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      since + timeout_ - std::chrono::steady_clock::now());
  pollfd fds[2] = {{connection_->fd(), POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
  // Not wakeable: a command is queued, so this only reads what has come (no wait), unless the
  // timeout has run out already.
  const int wait_ms = wakeable ? static_cast<int>(std::max<long>(0, left.count())) : 0;
  const int ready = ::poll(fds, wakeable ? 2 : 1, wait_ms);
  // Nothing within the wait: a wakeable wait lasted what was left of the timeout.
  if (ready == 0 && (wakeable || left.count() <= 0)) {
    throw RedisError("redis " + address_.url() + ": no reply within " +
                     std::to_string(timeout_.count()) + " ms");
  }
  if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) connection_->read_some();
  if (wakeable && (fds[1].revents & POLLIN) != 0) wake_.drain();
}

void RedisPipeline::loop(std::stop_token stop) {
  using Clock = std::chrono::steady_clock;
  std::deque<Command> fresh;
  std::deque<Command> in_flight;
  Clock::time_point progress{};  // the last reply, or the write that found nothing in flight
  for (;;) {
    try {
      if (stop.stop_requested()) {
        // The replies in flight are read; what is queued, close() fails.
        while (!in_flight.empty()) {
          complete_replies(in_flight);
          if (!in_flight.empty()) wait_for_replies(true, progress);
        }
        return;
      }
      {
        std::lock_guard lock(mu_);
        while (!queue_.empty() && fresh.size() < kMaxBatch) {
          fresh.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      if (!fresh.empty()) {
        if (in_flight.empty()) progress = Clock::now();
        write(fresh, in_flight);
      }
      if (in_flight.empty()) {
        if (going_to_sleep()) {
          pollfd wake{wake_.fd(), POLLIN, 0};
          ::poll(&wake, 1, -1);
          wake_.drain();
        }
        continue;
      }
      const std::size_t before = in_flight.size();
      complete_replies(in_flight);
      if (in_flight.size() != before) progress = Clock::now();
      // Replies still owed: wait for them, or for a new command to write meanwhile. With one queued
      // already, only what has come is read, and the new command is written on the next turn.
      if (!in_flight.empty()) wait_for_replies(going_to_sleep(), progress);
    } catch (const RedisError& e) {
      // The connection is gone with the replies it owed: those commands may or may not have run,
      // which their callers learn as StoreUnavailable. The next batch connects afresh. Each caller
      // gets an exception of its own (complete()).
      connection_.reset();
      for (std::deque<Command>* commands : {&in_flight, &fresh}) {
        for (Command& c : *commands)
          complete(c.done, nullptr, std::make_exception_ptr(RedisError(e.what())));
        commands->clear();
      }
      if (stop.stop_requested()) return;
    }
  }
}

}  // namespace podworker::endpoint

#include "redis_pipeline.h"

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
      cv_.notify_one();
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
  if (thread_.joinable()) thread_.join();
  std::deque<Command> left;
  {
    std::lock_guard lock(mu_);
    left.swap(queue_);
  }
  for (Command& c : left) complete(c.done, nullptr, closed_error(address_));
}

void RedisPipeline::loop(std::stop_token stop) {
  std::deque<Command> batch;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, stop, [this] { return !queue_.empty(); });
      if (stop.stop_requested()) return;  // close() fails what is left
      while (!queue_.empty() && batch.size() < kMaxBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    run_batch(batch);
  }
}

void RedisPipeline::run_batch(std::deque<Command>& batch) {
  try {
    if (!connection_ || connection_->broken()) {
      connection_.reset();
      connection_ = std::make_unique<RedisConnection>(address_, timeout_);
    }
    std::vector<std::string_view> argv;
    for (const Command& c : batch) {
      argv.assign(c.args->begin(), c.args->end());
      connection_->append(argv);
    }
    connection_->flush();
    while (!batch.empty()) {
      RedisReply reply = connection_->next_reply();
      Command c = std::move(batch.front());
      batch.pop_front();
      complete(c.done, std::move(reply), nullptr);
    }
  } catch (const RedisError& e) {
    // The connection is gone with the replies it owed: those commands may or may not have run,
    // which their callers learn as StoreUnavailable. The next batch connects afresh. Each caller
    // gets an exception of its own (complete()).
    connection_.reset();
    for (Command& c : batch)
      complete(c.done, nullptr, std::make_exception_ptr(RedisError(e.what())));
    batch.clear();
  }
}

}  // namespace podworker::endpoint

#include "progress_sender.h"

#include <utility>

#include "podworker/thread_name.h"

namespace podworker::worker {

ProgressSender::ProgressSender(JobSink& sink, std::stop_token stop)
    : sink_(sink), stop_(std::move(stop)) {}

ProgressSender::~ProgressSender() {
  finish();
}

void ProgressSender::post(std::string body) {
  std::lock_guard lock(mutex_);
  if (finishing_ || stop_.stop_requested()) return;
  latest_ = std::move(body);
  if (!sender_.joinable()) {
    sender_ = std::jthread([this] {
      name_this_thread("pw-progress");
      send_loop();
    });
  }
  changed_.notify_all();
}

void ProgressSender::finish() {
  {
    std::lock_guard lock(mutex_);
    finishing_ = true;
    latest_.reset();
  }
  changed_.notify_all();
  if (sender_.joinable()) sender_.join();
}

void ProgressSender::send_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, stop_, [&] { return latest_.has_value() || finishing_; });
    if (stop_.stop_requested() || finishing_ || !latest_) return;
    std::string body = std::move(*latest_);
    latest_.reset();
    lock.unlock();
    sink_.post_progress(body);
    lock.lock();
  }
}

}  // namespace podworker::worker

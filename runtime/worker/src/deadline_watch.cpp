#include "deadline_watch.h"

#include "podworker/thread_name.h"

namespace podworker::worker {

DeadlineWatch::Entry::~Entry() {
  if (watch_ != nullptr) watch_->remove(key_);
}

DeadlineWatch::Entry DeadlineWatch::add(JobControl& control, Clock::time_point deadline) {
  std::lock_guard lock(mu_);
  const auto key = std::make_pair(deadline, next_id_++);
  const bool earliest = entries_.empty() || key < entries_.begin()->first;
  entries_.emplace(key, &control);
  if (!thread_.joinable()) {
    thread_ = std::jthread([this](std::stop_token stop) {
      name_this_thread("pw-deadline");
      run(std::move(stop));
    });
  } else if (earliest) {
    wake_.notify_one();
  }
  return Entry(this, key);
}

std::size_t DeadlineWatch::pending() const {
  std::lock_guard lock(mu_);
  return entries_.size();
}

void DeadlineWatch::remove(const std::pair<Clock::time_point, std::uint64_t>& key) {
  // No wake-up: the thread finds the entry gone when it next looks, and a withdrawn deadline is
  // never earlier than the one it sleeps towards.
  std::lock_guard lock(mu_);
  entries_.erase(key);
}

void DeadlineWatch::run(std::stop_token stop) {
  std::unique_lock lock(mu_);
  while (!stop.stop_requested()) {
    if (entries_.empty()) {
      wake_.wait(lock, stop, [&] { return !entries_.empty(); });
      continue;
    }
    const auto first = entries_.begin();
    const auto when = first->first.first;
    if (Clock::now() >= when) {
      // Under the lock, so a withdrawing Entry waits for the stop to finish (see Entry).
      first->second->stop(StopReason::timed_out);
      entries_.erase(first);
      continue;
    }
    wake_.wait_until(lock, stop, when,
                     [&] { return entries_.empty() || entries_.begin()->first.first < when; });
  }
}

}  // namespace podworker::worker

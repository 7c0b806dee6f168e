// One thread that stops jobs at their deadlines, for every job of a worker. A job whose job-take
// carries a policy.executionTimeout (RunPod's and our endpoint's do) registers its deadline here;
// a thread per job would cost a thread start and join on every job, which at thousands of short
// jobs per second is most of a job's cost.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "job_run.h"

namespace podworker::worker {

class DeadlineWatch {
 public:
  using Clock = std::chrono::steady_clock;

  // A registered deadline; destroying it withdraws it. Once the destructor returns the watch will
  // not touch the job's control (a stop in progress finishes first).
  class Entry {
   public:
    Entry(Entry&& other) noexcept
        : watch_(std::exchange(other.watch_, nullptr)), key_(other.key_) {}
    Entry& operator=(Entry&&) = delete;
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;
    ~Entry();

   private:
    friend class DeadlineWatch;
    Entry(DeadlineWatch* watch, std::pair<Clock::time_point, std::uint64_t> key)
        : watch_(watch), key_(key) {}
    DeadlineWatch* watch_;
    std::pair<Clock::time_point, std::uint64_t> key_;
  };

  DeadlineWatch() = default;
  DeadlineWatch(const DeadlineWatch&) = delete;
  DeadlineWatch& operator=(const DeadlineWatch&) = delete;
  ~DeadlineWatch() = default;  // the thread (declared last) stops and joins first

  // Stops `control` with StopReason::timed_out at `deadline` unless the entry is destroyed first.
  // The thread starts with the first deadline, so a worker whose jobs carry none has no thread.
  [[nodiscard]] Entry add(JobControl& control, Clock::time_point deadline);

  // Deadlines registered and not yet fired or withdrawn (tests).
  std::size_t pending() const;

 private:
  void run(std::stop_token stop);
  void remove(const std::pair<Clock::time_point, std::uint64_t>& key);

  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  std::map<std::pair<Clock::time_point, std::uint64_t>, JobControl*> entries_;
  std::uint64_t next_id_ = 0;
  std::jthread thread_;
};

}  // namespace podworker::worker

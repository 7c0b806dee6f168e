// SIGTERM and SIGINT as a callback on a normal thread: the signal handler only writes a byte to a
// self-pipe, a watcher thread reads it and calls `on` (worker_main: stop taking jobs and drain).
#pragma once

#include <atomic>
#include <functional>
#include <thread>

namespace podworker::worker {

class SignalWatcher {
 public:
  // Installs the handlers; `on` runs on the watcher thread for each signal until destruction.
  explicit SignalWatcher(std::function<void()> on);
  // Restores the default handlers.
  ~SignalWatcher();
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::atomic<bool> quit_{false};
  std::jthread thread_;
};

}  // namespace podworker::worker

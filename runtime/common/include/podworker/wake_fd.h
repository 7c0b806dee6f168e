// An eventfd that ends a poll() on another thread early: signal() from any thread (a stop
// request, a shutdown, a command queued for a poller), drain() by the poller before it waits again.
#pragma once

namespace podworker {

class WakeFd {
 public:
  WakeFd();
  ~WakeFd();
  WakeFd(const WakeFd&) = delete;
  WakeFd& operator=(const WakeFd&) = delete;
  void signal() const;
  // Reads the count, so the next poll() waits again.
  void drain() const;
  int fd() const { return fd_; }

 private:
  int fd_;
};

}  // namespace podworker

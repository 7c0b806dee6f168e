#include "signal_watcher.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "podworker/thread_name.h"

namespace podworker::worker {
namespace {

// Self-pipe: the signal handler only writes a byte; a normal thread reads it and stops the worker.
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int) {
  const int saved = errno;
  const char byte = 's';
  [[maybe_unused]] auto n = ::write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

}  // namespace

SignalWatcher::SignalWatcher(std::function<void()> on) {
  if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  thread_ = std::jthread([this, on](std::stop_token st) {
    name_this_thread("pw-signals");
    while (!st.stop_requested()) {
      pollfd p{g_signal_pipe[0], POLLIN, 0};
      if (::poll(&p, 1, -1) < 0 && errno != EINTR) return;
      char buf[16];
      const auto n = ::read(g_signal_pipe[0], buf, sizeof buf);
      if (n > 0 && !quit_) on();
    }
  });
}

SignalWatcher::~SignalWatcher() {
  quit_ = true;
  thread_.request_stop();
  on_signal(0);  // wakes the watcher's poll()
  thread_.join();
  struct sigaction sa {};
  sa.sa_handler = SIG_DFL;
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGINT, &sa, nullptr);
  ::close(g_signal_pipe[0]);
  ::close(g_signal_pipe[1]);
}

}  // namespace podworker::worker

// A child process for tests that need a real executable (`worker` for signals and --serve-api,
// `endpoint`, redis-server): started by spawn_process() (it dies with the test, should the test be
// killed), stdout readable line by line with a deadline, killed and reaped when destroyed.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "spawn_process.h"

extern char** environ;

namespace podworker::test {

class ChildProcess {
 public:
  // `env`: NAME=VALUE entries added to this process's environment.
  ChildProcess(const std::string& path, const std::vector<std::string>& args,
               const std::vector<std::string>& env) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    SpawnOptions o;
    o.argv.push_back(path);
    o.argv.insert(o.argv.end(), args.begin(), args.end());
    for (char** e = environ; *e != nullptr; ++e) o.env.emplace_back(*e);
    o.env.insert(o.env.end(), env.begin(), env.end());
    o.stdout_fd = fds[1];
    try {
      pid_ = spawn_process(o);
    } catch (...) {
      ::close(fds[0]);
      ::close(fds[1]);
      throw;
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~ChildProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      wait();
    }
    if (out_ >= 0) ::close(out_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  void signal(int sig) { ::kill(pid_, sig); }
  pid_t pid() const noexcept { return pid_; }

  // Exit status (or 128 + signal); blocks until the child ends.
  int wait() {
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    if (WIFEXITED(status)) return WEXITSTATUS(status);
    if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
    return -1;
  }

  // The first stdout line containing `needle`, read until `timeout`; nullopt when it never comes.
  std::optional<std::string> read_line_with(const std::string& needle,
                                            std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (auto nl = buffer_.find('\n'); nl != std::string::npos; nl = buffer_.find('\n')) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        if (line.find(needle) != std::string::npos) return line;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char chunk[4096];
      const auto n = ::read(out_, chunk, sizeof chunk);
      if (n <= 0) return std::nullopt;
      buffer_.append(chunk, static_cast<std::size_t>(n));
    }
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buffer_;
};

}  // namespace podworker::test

#include "bridge_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace podworker::handlers::python {
namespace {

// The bridge's end of the socket, at this number in the child (the bridge is told it too).
constexpr int kChildFd = 3;

bool write_all(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    const ssize_t n = ::send(fd, data, size, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// 1: all read; 0: end-of-file before any byte; -1: error or end-of-file part way.
int read_all(int fd, char* data, std::size_t size) {
  std::size_t got = 0;
  while (got < size) {
    const ssize_t n = ::recv(fd, data + got, size - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) return got == 0 ? 0 : -1;
    got += static_cast<std::size_t>(n);
  }
  return 1;
}

std::string describe(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = ::strsignal(sig);
    return "was killed by signal " + std::to_string(sig) +
           (name ? " (" + std::string(name) + ")" : "");
  }
  return "ended (wait status " + std::to_string(status) + ")";
}

// The environment the bridge gets: ours, with unbuffered output so a handler's prints reach the
// log as they happen.
std::vector<std::string> child_environment() {
  std::vector<std::string> env;
  bool has_unbuffered = false;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    env.emplace_back(*e);
    if (env.back().rfind("PYTHONUNBUFFERED=", 0) == 0) has_unbuffered = true;
  }
  if (!has_unbuffered) env.emplace_back("PYTHONUNBUFFERED=1");
  return env;
}

class SpawnActions {
 public:
  SpawnActions() { ::posix_spawn_file_actions_init(&a_); }
  ~SpawnActions() { ::posix_spawn_file_actions_destroy(&a_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &a_; }

 private:
  posix_spawn_file_actions_t a_;
};

}  // namespace

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = other.release();
  }
  return *this;
}

UniqueFd::~UniqueFd() {
  if (fd_ >= 0) ::close(fd_);
}

int UniqueFd::release() {
  const int fd = fd_;
  fd_ = -1;
  return fd;
}

BridgeProcess::BridgeProcess(const BridgeCommand& command) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(std::string("socketpair: ") + std::strerror(errno));
  }
  socket_ = UniqueFd(fds[0]);
  // Above the child's target number, so dup2 always makes a fresh descriptor without CLOEXEC.
  UniqueFd child_end(::fcntl(fds[1], F_DUPFD_CLOEXEC, 10));
  ::close(fds[1]);
  if (child_end.get() < 0) throw std::runtime_error(std::string("fcntl: ") + std::strerror(errno));

  SpawnActions actions;
  ::posix_spawn_file_actions_adddup2(actions.get(), child_end.get(), kChildFd);
  // The handler's prints go to our stderr: stdout stays the worker's own (--test-input prints
  // the job's result there).
  ::posix_spawn_file_actions_adddup2(actions.get(), STDERR_FILENO, STDOUT_FILENO);
  // Nothing else of ours reaches Python: sockets Asio and libcurl open carry no CLOEXEC, so a
  // bridge started while --serve-api listens (a replacement after a crash) would otherwise hold the
  // listening socket and every open connection, keeping the port bound after the worker dies and
  // a closed connection open.
  ::posix_spawn_file_actions_addclosefrom_np(actions.get(), kChildFd + 1);
  std::vector<std::string> args = {command.python_exe, "-u", command.bridge_script,
                                   command.handler_file, std::to_string(kChildFd)};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env = child_environment();
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  const int rc = ::posix_spawnp(&pid_, command.python_exe.c_str(), actions.get(), nullptr,
                                argv.data(), envp.data());
  if (rc != 0) {
    pid_ = -1;
    throw std::runtime_error("cannot start the Python interpreter \"" + command.python_exe +
                             "\": " + std::strerror(rc) +
                             " (pass --python-exe PATH, or put python3 on PATH)");
  }
}

BridgeProcess::~BridgeProcess() {
  close_input();
  reap(std::chrono::milliseconds(3000));
}

bool BridgeProcess::send(std::string_view body) {
  if (body.size() > kMaxFrameBytes) return false;
  const auto n = static_cast<std::uint32_t>(body.size());
  const char header[4] = {static_cast<char>(n & 0xff), static_cast<char>((n >> 8) & 0xff),
                          static_cast<char>((n >> 16) & 0xff), static_cast<char>(n >> 24)};
  std::lock_guard lock(send_mu_);
  return write_all(socket_.get(), header, 4) && write_all(socket_.get(), body.data(), body.size());
}

bool BridgeProcess::receive(std::string& body, std::string& error) {
  unsigned char header[4];
  const int r = read_all(socket_.get(), reinterpret_cast<char*>(header), 4);
  if (r <= 0) {
    error = r == 0 ? "" : "its socket broke mid-frame";
    return false;
  }
  const std::uint32_t n = header[0] | (header[1] << 8) | (header[2] << 16) |
                          (static_cast<std::uint32_t>(header[3]) << 24);
  if (n > kMaxFrameBytes) {
    error = "it sent a frame of " + std::to_string(n) + " bytes";
    return false;
  }
  body.resize(n);
  if (read_all(socket_.get(), body.data(), n) != 1) {
    error = "its socket broke mid-frame";
    return false;
  }
  return true;
}

void BridgeProcess::close_input() {
  ::shutdown(socket_.get(), SHUT_WR);
}

std::string BridgeProcess::reap(std::chrono::milliseconds grace) {
  std::lock_guard lock(reap_mu_);
  if (exit_) return *exit_;
  if (pid_ < 0) return "never started";
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) break;
    if (r < 0 && errno != EINTR) {
      exit_ = "lost (waitpid failed)";
      return *exit_;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  exit_ = describe(status);
  return *exit_;
}

}  // namespace podworker::handlers::python

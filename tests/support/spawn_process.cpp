#include "spawn_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <stdexcept>

namespace podworker::test {
namespace {

// In the child, between fork and exec: only async-signal-safe calls (the parent has other
// threads, whose locks the child's copy of memory may hold). Reports errno on `report` and exits.
[[noreturn]] void fail_in_child(int report) {
  const int e = errno;
  [[maybe_unused]] const auto n = ::write(report, &e, sizeof e);
  ::_exit(127);
}

// close_range(2): a call per range, whatever the number of descriptors open.
void close_above_stderr_except(int keep) {
  if (keep > STDERR_FILENO + 1) ::close_range(STDERR_FILENO + 1, keep - 1, 0);
  ::close_range(keep + 1, UINT_MAX, 0);
}

}  // namespace

pid_t spawn_process(const SpawnOptions& o) {
  if (o.argv.empty()) throw std::invalid_argument("spawn_process: empty argv");
  // Everything the child needs is made before the fork: it must not allocate. execve takes
  // char* const[] for C's sake but never writes through them: the caller's strings are passed.
  std::vector<char*> argv, envp;
  for (const auto& a : o.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const auto& e : o.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(report[0]);
    ::close(report[1]);
    throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  }
  if (pid == 0) {
    ::close(report[0]);
    if (o.own_group && ::setpgid(0, 0) != 0) fail_in_child(report[1]);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) fail_in_child(report[1]);
    // The parent may have gone between the fork and the prctl: then no signal would come.
    if (::getppid() != parent) ::_exit(127);
    if (o.stdin_null) {
      const int in = ::open("/dev/null", O_RDONLY);
      if (in < 0 || ::dup2(in, STDIN_FILENO) < 0) fail_in_child(report[1]);
    }
    if (o.stdout_fd >= 0 && ::dup2(o.stdout_fd, STDOUT_FILENO) < 0) fail_in_child(report[1]);
    if (!o.log_path.empty()) {
      const int log = ::open(o.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (log < 0 || ::dup2(log, STDOUT_FILENO) < 0 || ::dup2(log, STDERR_FILENO) < 0) {
        fail_in_child(report[1]);
      }
    }
    close_above_stderr_except(report[1]);  // the report pipe closes itself at exec
    ::execve(argv[0], argv.data(), envp.data());
    fail_in_child(report[1]);
  }
  ::close(report[1]);
  int child_errno = 0;
  ssize_t n;
  while ((n = ::read(report[0], &child_errno, sizeof child_errno)) < 0 && errno == EINTR) {
  }
  ::close(report[0]);
  if (n == 0) return pid;  // closed by the exec: the program runs
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  throw std::runtime_error("cannot start " + o.argv[0] + ": " +
                           (n == sizeof child_errno ? std::strerror(child_errno) : "it exited"));
}

}  // namespace podworker::test

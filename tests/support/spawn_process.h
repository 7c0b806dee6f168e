// Starts a program as a child that dies with its parent: the tests' and the benchmarks' helper
// processes (workers, redis-server, endpoint replicas, the SDK worker). With posix_spawn, a test
// killed at its CTest timeout, or a benchmark stopped with Ctrl-C or `timeout`, left every child
// running: workers retrying a dead endpoint, redis-servers holding their ports, all of them taking
// CPU from whatever ran next. Here the child asks the kernel for SIGKILL when the thread that
// started it ends (PR_SET_PDEATHSIG), which holds whatever way the parent goes, SIGKILL included.
// Call it from a thread that outlives the child (the tests' and benchmarks' main threads do).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace podworker::test {

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is the executable's path (no PATH search)
  std::vector<std::string> env;   // the child's whole environment, NAME=VALUE
  int stdout_fd = -1;             // when >= 0: the child's stdout
  std::string log_path;           // when not empty: the child's stdout and stderr (truncated)
  bool stdin_null = false;        // stdin from /dev/null
  bool own_group = false;         // a process group of its own, led by the child
};

// The child's pid. Every descriptor above stderr stays out of the child (an in-process endpoint's
// sockets, which Asio opens without CLOEXEC, would otherwise stay open while it runs). Throws
// std::runtime_error, with the reason, when the program cannot be started (the exec's errno comes
// back on a pipe), and the child is reaped.
pid_t spawn_process(const SpawnOptions& options);

}  // namespace podworker::test

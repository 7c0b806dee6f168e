// spawn_process() (tests/support): the helper processes of the tests and benchmarks die with the
// thread that started them, however it goes, and a program that cannot start says why.
#include "spawn_process.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

using podworker::test::spawn_process;
using podworker::test::SpawnOptions;

namespace {

// Exit status, or 128 + signal; -1 when the child is still running after 20 s (then killed).
int reap(pid_t pid) {
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
}

}  // namespace

TEST_CASE("a spawned child is killed when the thread that started it ends") {
  // The kernel's parent-death signal follows the starting thread: a thread that ends stands for a
  // test or benchmark process killed at its timeout, by the same mechanism.
  pid_t child = -1;
  std::jthread([&] {
    SpawnOptions o;
    o.argv = {"/bin/sleep", "600"};
    child = spawn_process(o);
  }).join();
  REQUIRE(child > 0);
  CHECK(reap(child) == 128 + SIGKILL);
}

TEST_CASE("a spawned child gets only stdin, stdout and stderr, and its log file") {
  const auto dir =
      std::filesystem::temp_directory_path() / ("podworker-spawn-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto log = dir / "child.log";
  // A descriptor of this process without CLOEXEC (as Asio opens its sockets): not the child's.
  const int open_here = ::dup2(STDERR_FILENO, 200);
  REQUIRE(open_here == 200);
  SpawnOptions o;
  o.argv = {"/bin/sh", "-c", "ls /proc/self/fd; echo to-stderr >&2"};
  o.log_path = log.string();
  o.stdin_null = true;
  const pid_t child = spawn_process(o);
  CHECK(reap(child) == 0);
  ::close(open_here);
  std::stringstream text;
  text << std::ifstream(log).rdbuf();
  const std::string out = text.str();
  CHECK(out.find("to-stderr") != std::string::npos);
  CHECK(out.find("200") == std::string::npos);
  CHECK(out.find("0\n1\n2\n") == 0);
  std::filesystem::remove_all(dir);
}

TEST_CASE("a program that cannot start is an error with the reason, not a silent child") {
  SpawnOptions o;
  o.argv = {"/nonexistent/program"};
  try {
    spawn_process(o);
    FAIL("no error");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "cannot start /nonexistent/program: No such file or directory");
  }
  CHECK(::waitpid(-1, nullptr, WNOHANG) <= 0);  // the failed child was reaped
}

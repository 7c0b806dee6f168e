#include "child_process.h"

#include <signal.h>
#include <sys/wait.h>

#include <cstring>
#include <thread>

#include "spawn_process.h"

extern char** environ;

namespace podworker::bench {

ChildProcess::ChildProcess(const std::vector<std::string>& argv,
                           const std::map<std::string, std::string>& env,
                           const std::string& log_path)
    : log_path_(log_path) {
  test::SpawnOptions o;
  o.argv = argv;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "RUNPOD_", 7) != 0) o.env.emplace_back(*e);
  }
  for (const auto& [key, value] : env) o.env.push_back(key + "=" + value);
  o.log_path = log_path;
  o.stdin_null = true;
  // Its own process group: stop() reaches helpers it starts (the SDK forks a heartbeat process).
  o.own_group = true;
  pid_ = test::spawn_process(o);
}

ChildProcess::~ChildProcess() { stop(); }

bool ChildProcess::running() {
  if (reaped_) return false;
  int status = 0;
  if (waitpid(pid_, &status, WNOHANG) == pid_) reaped_ = true;
  return !reaped_;
}

void ChildProcess::stop(std::chrono::milliseconds grace) {
  if (pid_ <= 0) return;
  if (running()) {
    ::kill(-pid_, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + grace;
    // waitpid has no timeout: poll the exit at a short interval until the grace period ends.
    while (running() && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (running()) {
      ::kill(-pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
      reaped_ = true;
    }
  }
  // Whatever the leader left in its group (the SDK's heartbeat process) goes too.
  ::kill(-pid_, SIGKILL);
  pid_ = -1;
}

}  // namespace podworker::bench

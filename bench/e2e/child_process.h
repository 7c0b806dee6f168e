// A child process for the benchmark (our worker, the SDK worker, redis-server): spawned in its own
// process group with its output in a log file, and stopped (SIGTERM to the group, then SIGKILL
// after a grace period) when the object goes away, so no benchmark run leaves a worker behind. A
// benchmark that is itself killed takes the child with it (spawn_process.h); helpers the child
// started in its group (the SDK's heartbeat process) are not reached then.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <string>
#include <vector>

namespace podworker::bench {

class ChildProcess {
 public:
  // Environment: this process's, minus every RUNPOD_* variable, plus `env`.
  ChildProcess(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               const std::string& log_path);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // True while the process has not exited.
  bool running();
  // SIGTERM to the group; SIGKILL to the group if it has not exited within `grace`. Idempotent.
  void stop(std::chrono::milliseconds grace = std::chrono::seconds(5));

  const std::string& log_path() const { return log_path_; }
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
  std::string log_path_;
};

}  // namespace podworker::bench

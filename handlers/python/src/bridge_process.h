// The Python process behind `worker --python`: podworker_bridge.py in the user's interpreter,
// spawned with one end of a socket pair as its fd 3. Frames both ways are a 4-byte little-endian
// length then UTF-8 JSON (the bridge script's docstring lists the ops).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace podworker::handlers::python {

// The largest frame either side accepts: a handler's single result or chunk beyond this is a
// broken bridge, not a job.
inline constexpr std::uint32_t kMaxFrameBytes = 1u << 30;

// One owned file descriptor.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd();
  int get() const { return fd_; }
  int release();

 private:
  int fd_ = -1;
};

struct BridgeCommand {
  std::string python_exe;     // a path, or a name looked up on PATH
  std::string bridge_script;  // podworker_bridge.py (its folder holds the runpod package)
  std::string handler_file;
};

// The child process and our end of its socket. Writes are serialized; one thread reads.
class BridgeProcess {
 public:
  // Throws std::runtime_error when the interpreter cannot be started.
  explicit BridgeProcess(const BridgeCommand& command);
  // Closes our end (the bridge exits on end-of-file), waits briefly, then kills it.
  ~BridgeProcess();
  BridgeProcess(const BridgeProcess&) = delete;
  BridgeProcess& operator=(const BridgeProcess&) = delete;

  // One frame; false when the bridge is gone (never raises SIGPIPE).
  bool send(std::string_view body);
  // The next frame into `body`; false at end-of-file or on a broken frame (`error` says which).
  bool receive(std::string& body, std::string& error);
  // No more frames from us: the bridge's reader sees end-of-file and the process exits.
  void close_input();
  // After receive() failed: waits up to `grace` for the process to end (killing it after), and
  // says how it ended: "exited with status 3", "was killed by signal 11 (Segmentation fault)".
  std::string reap(std::chrono::milliseconds grace);
  pid_t pid() const { return pid_; }

 private:
  UniqueFd socket_;
  pid_t pid_ = -1;
  std::mutex send_mu_;
  std::mutex reap_mu_;
  std::optional<std::string> exit_;  // set once reaped: the pid is no longer ours to signal
};

}  // namespace podworker::handlers::python

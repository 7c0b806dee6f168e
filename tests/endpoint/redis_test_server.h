// A redis-server of the test's own: started on a free loopback port in a fresh directory, stopped
// (and the directory removed) when destroyed; never a system service. restart() keeps the port
// and the directory, so with AOF on a test can check what survives the server.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "../worker/child_process.h"
#include "redis_connection.h"

namespace podworker::test {

// redis-server from PODWORKER_REDIS_SERVER or the PATH; empty when there is none.
inline std::string redis_server_path() {
  if (const char* p = std::getenv("PODWORKER_REDIS_SERVER"); p != nullptr && *p != '\0') return p;
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  dirs += ":/usr/bin:/usr/sbin:/usr/local/bin";
  for (std::size_t start = 0; start <= dirs.size();) {
    const std::size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::filesystem::path candidate =
        std::filesystem::path(dirs.substr(start, end - start)) / "redis-server";
    if (end > start && ::access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return {};
}

// A port nobody listens on right now (the kernel's pick for an ephemeral bind).
inline std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("no free port");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

class RedisTestServer {
 public:
  // `aof`: append-only file on, fsynced on every write, so a restart loses nothing acknowledged.
  explicit RedisTestServer(bool aof = false) : aof_(aof), port_(free_port()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "podworker-redis-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    start();
  }
  ~RedisTestServer() {
    child_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  RedisTestServer(const RedisTestServer&) = delete;
  RedisTestServer& operator=(const RedisTestServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  endpoint::RedisAddress address() const { return {"127.0.0.1", port_, 0}; }

  // SIGTERM (redis-server writes its AOF and exits), then a new server on the same port and dir.
  void restart() {
    stop();
    start();
  }
  void stop() {
    child_->signal(SIGTERM);
    child_->wait();
    child_.reset();
  }

  // Starts the server (again) on the port and directory it was given.
  void start() {
    std::vector<std::string> args{"--port",       std::to_string(port_),
                                  "--bind",       "127.0.0.1",
                                  "--save",       "",
                                  "--appendonly", aof_ ? "yes" : "no",
                                  "--dir",        dir_,
                                  "--logfile",    "redis.log",
                                  "--daemonize",  "no"};
    if (aof_) args.insert(args.end(), {"--appendfsync", "always"});
    child_.emplace(redis_server_path(), args, std::vector<std::string>{});
    // Ready when it answers PING; bounded so a server that cannot start fails the test.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    for (;;) {
      try {
        endpoint::RedisConnection c(address(), std::chrono::seconds(1));
        if (endpoint::reply_text(*c.command({"PING"})) == "PONG") return;
      } catch (const endpoint::RedisError&) {
      }
      if (std::chrono::steady_clock::now() > deadline) {
        throw std::runtime_error("redis-server did not start");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // Every database emptied: each test case starts from nothing.
  void flush() {
    endpoint::RedisConnection(address(), std::chrono::seconds(5)).command({"FLUSHALL"});
  }

 private:
  bool aof_;
  std::uint16_t port_;
  std::string dir_;
  std::optional<ChildProcess> child_;
};

}  // namespace podworker::test

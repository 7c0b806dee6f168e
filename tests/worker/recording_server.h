// A small real HTTP server for the worker's protocol tests: it records every request (method,
// target, headers, body) and answers through a test-supplied responder, which may block to play a
// long poll. Thread per connection (Boost.Beast, synchronous): simple, and plenty for tests.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace podworker::test {

struct RecordedRequest {
  std::string method;
  std::string target;  // path and query, as sent
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::string path() const { return target.substr(0, target.find('?')); }
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct Reply {
  int status = 200;
  std::string body;
  std::string content_type = "application/json";
};

class RecordingServer {
 public:
  // The responder runs on the connection's thread; `stop` is requested when the server stops, so
  // a responder playing a long poll must wait on it.
  using Responder = std::function<Reply(const RecordedRequest&, std::stop_token stop)>;

  explicit RecordingServer(Responder responder);
  ~RecordingServer();
  RecordingServer(const RecordingServer&) = delete;
  RecordingServer& operator=(const RecordingServer&) = delete;

  std::uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::vector<RecordedRequest> requests() const;
  // TCP connections accepted so far (keep-alive clients reuse theirs).
  std::size_t connections() const;
  // Waits until `done(requests)` holds; false when `timeout` passes first.
  bool wait_until(const std::function<bool(const std::vector<RecordedRequest>&)>& done,
                  std::chrono::milliseconds timeout = std::chrono::seconds(20)) const;
  // Closes the listener and every connection, ends blocked responders, joins all threads.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
};

}  // namespace podworker::test

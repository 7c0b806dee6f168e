// Test-side HTTP over loopback: a blocking keep-alive client, an incremental Server-Sent-Events
// reader and a webhook receiver with scripted status codes. Plain Beast, synchronous, with socket
// timeouts so a broken server fails a test instead of hanging it.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "podworker/json.h"

namespace podworker::test {

struct Response {
  int status = 0;
  std::string body;
  std::string content_type;
  std::string allow;
  json::Document json() const { return json::parse(body); }
};

using Headers = std::vector<std::pair<std::string, std::string>>;

class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends one request on the kept-alive connection (reconnecting when the server closed it).
  Response request(const std::string& method, const std::string& target, const std::string& body = {},
                   const Headers& headers = {});
  Response get(const std::string& target, const Headers& headers = {}) { return request("GET", target, {}, headers); }
  Response post(const std::string& target, const std::string& body = {}, const Headers& headers = {}) {
    return request("POST", target, body, headers);
  }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Reads a text/event-stream response on its own thread; text() is what arrived so far (the status
// line and headers included). A GET with Accept: text/event-stream, or a POST of `post_body`.
class SseReader {
 public:
  SseReader(std::uint16_t port, std::string target);
  SseReader(std::uint16_t port, std::string target, std::string post_body, Headers headers = {});
  ~SseReader();
  // Waits (bounded) until the received text contains `needle`.
  bool wait_for(const std::string& needle);
  // Waits (bounded) until the server closed the stream; returns everything received.
  std::string finish();
  std::string text();

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
  bool closed_ = false;
  std::jthread thread_;
};

// A webhook receiver on 127.0.0.1:port(): answers the i-th POST with statuses[i] (200 after the
// list), records every body.
class WebhookReceiver {
 public:
  explicit WebhookReceiver(std::vector<int> statuses);
  ~WebhookReceiver();
  std::uint16_t port() const { return port_; }
  // Waits (bounded) until `n` requests arrived; returns the bodies received.
  std::vector<std::string> wait_for_requests(std::size_t n);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::uint16_t port_ = 0;
};

// Polls `condition` until it holds or `timeout_ms` passes; true when it held. For conditions on
// server state that only a request can observe (no sleep stands in for synchronisation).
bool eventually(const std::function<bool()>& condition, int timeout_ms = 10'000);

}  // namespace podworker::test

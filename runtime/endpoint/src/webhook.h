// Outgoing webhooks: a job's final status JSON POSTed to the URL it was submitted with, over http://
// or https:// (libcurl; certificates and host names are checked). Deliveries run on a few worker
// threads of their own, so a slow receiver never holds an endpoint I/O thread: first attempt, then
// `retries` more, `delay` apart, each bounded by `timeout`.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store.h"

namespace podworker::endpoint {

// Whether a webhook can be delivered to `url`: http:// or https:// with a host.
bool webhook_url_supported(std::string_view url);

struct HttpResult {
  long status = 0;    // 0: no response
  std::string error;  // why there was no response
};

struct WebhookPolicy {
  int retries = 2;
  std::chrono::milliseconds delay{10'000};
  std::chrono::milliseconds timeout{10'000};
  std::string ca_file;  // CA bundle to check https receivers against (empty: the system's)
};

// One POST of `body` (Content-Type application/json). Blocks for at most `timeout`; a stop request
// aborts the transfer.
HttpResult post_json(const std::string& url, const std::string& body, const WebhookPolicy& policy,
                     std::stop_token stop);

class WebhookSender {
 public:
  explicit WebhookSender(WebhookPolicy policy, unsigned threads = 2);
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;

  // Queues one delivery (success: any 2xx). Unsupported URLs are logged and dropped.
  void send(TerminalEvent event);
  // Ends the deliveries: transfers in flight are aborted, queued ones dropped. Also on destruction.
  void stop();

 private:
  void run(std::stop_token stop);
  void deliver(const TerminalEvent& event, std::stop_token stop);

  const WebhookPolicy policy_;
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::deque<TerminalEvent> queue_;
  std::vector<std::jthread> threads_;
};

}  // namespace podworker::endpoint

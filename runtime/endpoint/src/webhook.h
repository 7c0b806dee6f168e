// Outgoing HTTP for webhooks: a small Beast client (plain http:// only) and the delivery policy
// (first attempt, then `retries` more, `delay` apart, each bounded by `timeout`).
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>

#include "store.h"

namespace podworker::endpoint {

struct HttpUrl {
  std::string host;
  std::string port;
  std::string target;
};

// Parses "http://host[:port][/path][?query]"; nullopt for anything else (https included: the local
// endpoint has no TLS client).
std::optional<HttpUrl> parse_http_url(std::string_view url);

struct HttpResult {
  int status = 0;     // 0: no response
  std::string error;  // why there was no response
};

// POSTs `body` with Content-Type application/json; runs on the calling coroutine's executor.
boost::asio::awaitable<HttpResult> http_post_json(const HttpUrl& url, const std::string& body,
                                                  std::chrono::milliseconds timeout);

struct WebhookPolicy {
  int retries = 2;
  std::chrono::milliseconds delay{10'000};
  std::chrono::milliseconds timeout{10'000};
};

// Delivers one webhook: success is any 2xx. Gives up early once `stopping` is set.
boost::asio::awaitable<void> deliver_webhook(TerminalEvent event, WebhookPolicy policy,
                                             const std::atomic<bool>& stopping);

}  // namespace podworker::endpoint

// The endpoint's HTTP families: requests by route and status code, rate-limited requests, SSE
// clients. Counting a request is an atomic load and an increment; a (route, code) pair's counter
// is registered the first time it is seen.
#pragma once

#include <atomic>
#include <memory>
#include <optional>

#include "podworker/metrics.h"
#include "routes.h"

namespace podworker::endpoint {

class HttpMetrics {
 public:
  explicit HttpMetrics(metrics::Registry& registry);

  // `op`: nullopt for a target no route matched. `status`: the HTTP status code sent.
  void request(std::optional<Op> op, int status);
  void rate_limited(Op op);
  // A ping with status=unhealthy: a worker failed its start's fitness checks.
  void unhealthy_ping() { unhealthy_pings_.inc(); }

  // An SSE client (/stream as text/event-stream, a streamed OpenAI completion) while connected.
  class SseClient {
   public:
    explicit SseClient(HttpMetrics& m) : gauge_(m.sse_clients_) { gauge_.add(1); }
    ~SseClient() { gauge_.add(-1); }
    SseClient(const SseClient&) = delete;
    SseClient& operator=(const SseClient&) = delete;

   private:
    metrics::Gauge& gauge_;
  };

 private:
  static constexpr std::size_t kRoutes = static_cast<std::size_t>(Op::asset) + 2;  // + no route
  static constexpr int kMinStatus = 100, kMaxStatus = 599;
  static constexpr std::size_t kStatuses = kMaxStatus - kMinStatus + 1;
  static std::size_t route_index(std::optional<Op> op);

  metrics::Registry& registry_;
  std::unique_ptr<std::atomic<metrics::Counter*>[]> requests_;      // [route][status]
  std::unique_ptr<std::atomic<metrics::Counter*>[]> rate_limited_;  // [route]
  metrics::Gauge& sse_clients_;
  metrics::Counter& unhealthy_pings_;
};

}  // namespace podworker::endpoint

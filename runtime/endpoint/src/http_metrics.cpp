#include "http_metrics.h"

#include <string>

namespace podworker::endpoint {

namespace {

constexpr std::string_view kRequestsHelp = "HTTP requests answered, by route and status code.";
constexpr std::string_view kRateLimitedHelp =
    "Requests refused by a route's rate limit (answered 429).";

std::string route_label(std::optional<Op> op) {
  return op ? std::string(op_name(*op)) : "none";
}

}  // namespace

HttpMetrics::HttpMetrics(metrics::Registry& registry)
    : registry_(registry),
      requests_(std::make_unique<std::atomic<metrics::Counter*>[]>(kRoutes * kStatuses)),
      rate_limited_(std::make_unique<std::atomic<metrics::Counter*>[]>(kRoutes)),
      sse_clients_(
          registry.gauge("podworker_endpoint_sse_clients",
                         "Clients connected to a Server-Sent Events stream (/stream, streamed "
                         "OpenAI completions).")),
      unhealthy_pings_(registry.counter("podworker_endpoint_unhealthy_pings_total",
                                        "Pings with status=unhealthy: workers that failed their "
                                        "start's fitness checks and exited.")) {
  // Present from the first scrape, so a rate of them reads 0 instead of no data.
  registry_.counter("podworker_endpoint_rate_limited_requests_total", kRateLimitedHelp,
                    {{"route", "run"}});
}

std::size_t HttpMetrics::route_index(std::optional<Op> op) {
  return op ? static_cast<std::size_t>(*op) : kRoutes - 1;
}

void HttpMetrics::request(std::optional<Op> op, int status) {
  if (status < kMinStatus || status > kMaxStatus) status = 500;
  std::atomic<metrics::Counter*>& slot =
      requests_[route_index(op) * kStatuses + (status - kMinStatus)];
  metrics::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    // Registering twice from two threads returns the same counter: the race is harmless.
    counter = &registry_.counter("podworker_endpoint_http_requests_total", kRequestsHelp,
                                 {{"route", route_label(op)}, {"code", std::to_string(status)}});
    slot.store(counter, std::memory_order_release);
  }
  counter->inc();
}

void HttpMetrics::rate_limited(Op op) {
  std::atomic<metrics::Counter*>& slot = rate_limited_[route_index(op)];
  metrics::Counter* counter = slot.load(std::memory_order_acquire);
  if (counter == nullptr) {
    counter = &registry_.counter("podworker_endpoint_rate_limited_requests_total", kRateLimitedHelp,
                                 {{"route", route_label(op)}});
    slot.store(counter, std::memory_order_release);
  }
  counter->inc();
}

}  // namespace podworker::endpoint

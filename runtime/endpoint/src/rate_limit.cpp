#include "rate_limit.h"

namespace podworker::endpoint {

bool RateLimiter::try_acquire(Permit& permit) {
  if (limit_.requests > 0) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    if (window_start_ == std::chrono::steady_clock::time_point{}) window_start_ = now;
    const auto elapsed = now - window_start_;
    if (elapsed >= 2 * window_) {
      previous_ = 0;
      current_ = 0;
      window_start_ = now;
    } else if (elapsed >= window_) {
      previous_ = current_;
      current_ = 0;
      window_start_ += window_;
    }
    // The share of the previous window that still overlaps the sliding window ending now.
    const double into = std::chrono::duration<double>(now - window_start_) / window_;
    const double estimate = static_cast<double>(previous_) * (1.0 - into) + static_cast<double>(current_);
    if (estimate + 1.0 > static_cast<double>(limit_.requests)) return false;
    ++current_;
  }
  if (limit_.concurrent > 0) {
    const std::uint32_t before = in_flight_.fetch_add(1, std::memory_order_relaxed);
    if (before >= limit_.concurrent) {
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      return false;
    }
    permit = Permit(&in_flight_);
  }
  return true;
}

}  // namespace podworker::endpoint

// Per-route rate limits: requests per window (a sliding window estimated from the current and the
// previous fixed window, as counters alone allow) and requests in flight at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <utility>

#include "podworker/endpoint/server.h"

namespace podworker::endpoint {

class RateLimiter {
 public:
  // Releases its concurrency slot when destroyed. Move-only.
  class Permit {
   public:
    Permit() = default;
    explicit Permit(std::atomic<std::uint32_t>* in_flight) : in_flight_(in_flight) {}
    Permit(Permit&& o) noexcept : in_flight_(std::exchange(o.in_flight_, nullptr)) {}
    Permit& operator=(Permit&& o) noexcept {
      if (this != &o) {
        release();
        in_flight_ = std::exchange(o.in_flight_, nullptr);
      }
      return *this;
    }
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    ~Permit() { release(); }

   private:
    void release() {
      if (in_flight_ != nullptr) std::exchange(in_flight_, nullptr)->fetch_sub(1, std::memory_order_relaxed);
    }
    std::atomic<std::uint32_t>* in_flight_ = nullptr;
  };

  RateLimiter() = default;
  RateLimiter(RateLimit limit, std::chrono::milliseconds window) : limit_(limit), window_(window) {}

  // A permit, or false when the request is over either limit (429).
  bool try_acquire(Permit& permit);

 private:
  RateLimit limit_;
  std::chrono::milliseconds window_{10'000};
  std::mutex mu_;
  std::chrono::steady_clock::time_point window_start_{};
  std::uint64_t current_ = 0;
  std::uint64_t previous_ = 0;
  std::atomic<std::uint32_t> in_flight_{0};
};

}  // namespace podworker::endpoint

#include "llm/cpu/thread_pool.h"

#include "podworker/thread_name.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define PW_CPU_RELAX() _mm_pause()
#else
#define PW_CPU_RELAX() ((void)0)
#endif

namespace podworker::llm::cpu {

namespace {
// Spin iterations before sleeping: covers the gap between two steps of one token (a few µs) but
// not the idle time between requests, when the workers sleep.
constexpr int kSpin = 1 << 14;
}  // namespace

ThreadPool::ThreadPool(int threads) : threads_(threads < 1 ? 1 : threads) {
  workers_.reserve(static_cast<std::size_t>(threads_ - 1));
  for (int tid = 1; tid < threads_; ++tid) {
    workers_.emplace_back([this, tid](std::stop_token stop) {
      name_this_thread("pw-llm-pool");
      worker(stop, tid);
    });
  }
}

ThreadPool::~ThreadPool() {
  for (auto& w : workers_) w.request_stop();
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  workers_.clear();  // joins
}

void ThreadPool::run(void (*fn)(void*, int), void* ctx) {
  if (threads_ == 1) {
    fn(ctx, 0);
    return;
  }
  fn_ = fn;
  ctx_ = ctx;
  closed_.store(false);
  generation_.fetch_add(1);
  generation_.notify_all();
  fn(ctx, 0);
  // Workers that have not joined yet will see closed_ and stay out; wait for those inside.
  closed_.store(true);
  for (int i = 0; in_flight_.load() != 0; ++i) {
    if (i < 4096) {
      PW_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
}

void ThreadPool::worker(std::stop_token stop, int tid) {
  // Generation 0 is the pool's state at construction (run() cannot have been called yet); starting
  // from it rather than from a load means a stop signalled before this thread ran is not missed.
  std::uint32_t seen = 0;
  while (true) {
    std::uint32_t now = seen;
    for (int i = 0; i < kSpin; ++i) {
      now = generation_.load(std::memory_order_acquire);
      if (now != seen) break;
      PW_CPU_RELAX();
    }
    while (now == seen) {
      generation_.wait(seen, std::memory_order_acquire);
      now = generation_.load(std::memory_order_acquire);
    }
    seen = now;
    if (stop.stop_requested()) return;
    // Join the step only while it is open and still the one we woke for (seq_cst pairs with the
    // caller's closed_ store and in_flight_ check).
    in_flight_.fetch_add(1);
    if (!closed_.load() && generation_.load() == now) fn_(ctx_, tid);
    in_flight_.fetch_sub(1);
  }
}

}  // namespace podworker::llm::cpu

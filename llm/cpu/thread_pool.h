// A persistent pool for the CPU forward pass: one token runs ~200 parallel steps, so a step must
// start and finish in about a microsecond. Workers spin briefly on a generation counter before
// sleeping on it (std::atomic wait/notify), and the calling thread takes part as thread 0.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace podworker::llm::cpu {

// Shares out `total` work units among the pool's threads for one parallel step. Each thread owns a
// contiguous 1/T of the units (its home range) and claims them one by one from a counter in its own
// cache line, so in the common case no claim touches a line another thread writes: a shared counter
// costs a cross-core cache-line transfer per claim, which at ~13,000 claims per decoded token cost
// more than a second core gains. A thread that finishes its range takes units from the others'
// ranges (same counters), so a worker the OS has descheduled, or one that never joins the step,
// delays nothing: the caller simply does its share.
class WorkSplit {
 public:
  explicit WorkSplit(int threads) : slots_(static_cast<std::size_t>(threads < 1 ? 1 : threads)) {}

  // Called by the pool's caller before ThreadPool::run (which publishes it to the workers).
  void reset(int total) {
    const int t = static_cast<int>(slots_.size());
    for (int i = 0; i < t; ++i) {
      const auto begin = static_cast<int>(static_cast<long long>(total) * i / t);
      slots_[static_cast<std::size_t>(i)].next.store(begin, std::memory_order_relaxed);
      slots_[static_cast<std::size_t>(i)].end = static_cast<int>(static_cast<long long>(total) * (i + 1) / t);
    }
  }

  // Calls f(unit) for every unit this thread claims: its own range first, then the others'.
  template <class F>
  void run(int tid, F&& f) {
    const int t = static_cast<int>(slots_.size());
    for (int k = 0; k < t; ++k) {
      Slot& s = slots_[static_cast<std::size_t>((tid + k) % t)];
      for (int u = s.next.fetch_add(1, std::memory_order_relaxed); u < s.end; u = s.next.fetch_add(1, std::memory_order_relaxed)) {
        f(u);
      }
    }
  }

 private:
  struct alignas(64) Slot {
    std::atomic<int> next{0};
    int end = 0;
  };
  std::vector<Slot> slots_;
};

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // total threads including the caller; at least 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Runs fn(ctx, tid) on the calling thread (tid 0) and on every worker that arrives before the
  // caller's own call returns; returns when all started calls have returned. fn must therefore
  // share out its work dynamically (WorkSplit) and be correct with any subset of threads: on a
  // busy machine a descheduled worker must not hold up the step. Not reentrant.
  void run(void (*fn)(void*, int), void* ctx);
  template <class F>
  void run(F& f) {
    run([](void* c, int tid) { (*static_cast<F*>(c))(tid); }, &f);
  }

 private:
  void worker(std::stop_token stop, int tid);

  int threads_;
  void (*fn_)(void*, int) = nullptr;
  void* ctx_ = nullptr;
  alignas(64) std::atomic<std::uint32_t> generation_{0};
  alignas(64) std::atomic<int> in_flight_{0};
  std::atomic<bool> closed_{true};
  std::vector<std::jthread> workers_;
};

}  // namespace podworker::llm::cpu

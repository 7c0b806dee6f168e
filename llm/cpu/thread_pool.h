// A persistent pool for the CPU forward pass: one token runs ~200 parallel steps, so a step must
// start and finish in about a microsecond. Workers spin briefly on a generation counter before
// sleeping on it (std::atomic wait/notify), and the calling thread takes part as thread 0.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace podworker::llm::cpu {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);  // total threads including the caller; at least 1
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return threads_; }

  // Runs fn(ctx, tid) on the calling thread (tid 0) and on every worker that arrives before the
  // caller's own call returns; returns when all started calls have returned. fn must therefore
  // share out its work dynamically (an atomic counter) and be correct with any subset of threads:
  // on a busy machine a descheduled worker must not hold up the step. Not reentrant.
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

// A JobStore decorator that measures the store it wraps: the latency of every operation, and the
// job lifecycle the HTTP layer never sees in one place (queue wait, run time, how each job ended,
// timeouts decided inside the store's sweep). It also remembers the most recent jobs for the
// dashboard's table. The wrapped store is unchanged and knows nothing of it.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "memory_store.h"  // StringHash
#include "podworker/metrics.h"
#include "store.h"

namespace podworker::endpoint {

class MeteredStore final : public JobStore {
 public:
  // Registers the endpoint's job and store families in `registry`, labelled endpoint=`endpoint_id`.
  // `clock` times the jobs (the store's own clock, so tests drive both); null: the steady clock.
  // Store operation latencies are always real time.
  MeteredStore(std::unique_ptr<JobStore> inner, metrics::Registry& registry,
               const std::string& endpoint_id, std::shared_ptr<const StoreClock> clock = nullptr);

  SubmitResult submit(NewJob job) override;
  std::optional<JobRecord> status(std::string_view id) override;
  std::optional<StreamBatch> stream(std::string_view id) override;
  std::optional<StreamBatch> read_stream(std::string_view id, std::size_t cursor) override;
  std::optional<JobStatus> cancel(std::string_view id) override;
  RetryOutcome retry(std::string_view id) override;
  std::size_t purge_queue() override;
  HealthCounts health() override;
  void worker_begin(std::string_view worker) override;
  void worker_end(std::string_view worker) override;
  std::vector<TakenJob> take(std::string_view worker, std::size_t max_jobs) override;
  void release(std::string_view worker, const std::vector<TakenJob>& taken) override;
  PostOutcome post_result(std::string_view worker, std::string_view job,
                          WorkerResult result) override;
  PostOutcome post_stream(std::string_view worker, std::string_view job,
                          std::string chunk_json) override;
  void ping(std::string_view worker, const std::vector<std::string>& job_ids) override;
  void report_in_progress(std::string_view worker, bool holding) override;
  std::vector<std::string> take_stop_requests(std::string_view worker) override;
  void sweep() override;
  Subscription watch(Topic topic, std::string_view key, std::function<void()> notify) override;
  void wake_all() override;

  // Reads the wrapped store's health into the gauges (jobs by state, queue depth, workers) and the
  // requeue counter; the server runs it before each scrape.
  void collect();

  // The ids of the jobs submitted last, newest first (at most kRecentJobs).
  static constexpr std::size_t kRecentJobs = 50;
  std::vector<std::string> recent_jobs() const;

 private:
  using Clock = std::chrono::steady_clock;
  enum class StoreOp : std::uint8_t {
    submit,
    status,
    stream,
    read_stream,
    cancel,
    retry,
    purge_queue,
    health,
    worker_begin,
    worker_end,
    take,
    release,
    post_result,
    post_stream,
    ping,
    report_in_progress,
    take_stop_requests,
    sweep,
    count_
  };
  // A job between submit and its end, as this decorator saw it: what its delay and execution
  // times count from, and the deadlines after which the sweep asks the store how it ended.
  struct Tracked {
    StoreClock::time_point since;  // queued (submitted, retried, requeued), or taken
    bool taken = false;
    std::chrono::milliseconds execution_timeout{0};
    std::chrono::milliseconds ttl{0};
  };
  // Sharded so the I/O threads rarely meet on one lock; each holds the lock for a map operation.
  static constexpr std::size_t kShards = 16;
  struct Shard {
    std::mutex mu;
    std::unordered_map<std::string, Tracked, StringHash, std::equal_to<>> jobs;
  };
  Shard& shard(std::string_view id) { return shards_[StringHash{}(id) % kShards]; }
  // Counts one call of the wrapped store, and times one call in kSampleEvery per thread: two clock
  // reads on every call cost more than the rest of the metrics together, and a sample of the
  // calls gives the same latency distribution. The counter stays exact.
  static constexpr unsigned kSampleEvery = 8;
  class Timed {
   public:
    Timed(MeteredStore& store, StoreOp op) : op_(static_cast<std::size_t>(op)), store_(store) {
      store_.op_calls_[op_]->inc();
      thread_local unsigned calls = 0;
      if (++calls % kSampleEvery == 0) start_ = Clock::now();
    }
    ~Timed() {
      if (start_ != Clock::time_point{}) store_.op_seconds_[op_]->observe_since(start_);
    }
    Timed(const Timed&) = delete;
    Timed& operator=(const Timed&) = delete;

   private:
    std::size_t op_;
    MeteredStore& store_;
    Clock::time_point start_{};
  };
  void finished(JobStatus status);
  void check_overdue();
  StoreClock::time_point now() const { return clock_->now(); }

  std::unique_ptr<JobStore> inner_;
  std::shared_ptr<const StoreClock> clock_;
  std::array<metrics::Histogram*, static_cast<std::size_t>(StoreOp::count_)> op_seconds_{};
  std::array<metrics::Counter*, static_cast<std::size_t>(StoreOp::count_)> op_calls_{};
  metrics::Counter& submitted_;
  metrics::Counter& refused_;
  metrics::Counter& retried_;
  metrics::Counter& requeued_;
  std::array<metrics::Counter*, 6> finished_{};  // by JobStatus (the terminal ones)
  metrics::Histogram& delay_seconds_;
  metrics::Histogram& execution_seconds_;
  metrics::Gauge& queued_bytes_;
  metrics::Gauge& queue_depth_;
  std::array<metrics::Gauge*, 4> jobs_{};     // IN_QUEUE, IN_PROGRESS, COMPLETED, FAILED
  std::array<metrics::Gauge*, 2> workers_{};  // idle, running
  std::uint64_t requeued_seen_ = 0;           // the store's count at the last collect()
  std::mutex collect_mu_;
  std::array<Shard, kShards> shards_;
  StoreClock::time_point next_overdue_check_{};

  mutable std::mutex recent_mu_;
  std::deque<std::string> recent_;
};

}  // namespace podworker::endpoint

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
  // The wrapped store goes first: operations it completes as it closes still find this one whole.
  ~MeteredStore() override { inner_.reset(); }
  MeteredStore(const MeteredStore&) = delete;
  MeteredStore& operator=(const MeteredStore&) = delete;

  SubmitResult submit(NewJob job) override;
  std::optional<JobRecord> status(std::string_view id) override;
  std::optional<StreamBatch> stream(std::string_view id) override;
  std::optional<StreamBatch> read_stream(std::string_view id, std::size_t cursor) override;
  std::optional<JobStatus> cancel(std::string_view id) override;
  RetryOutcome retry(std::string_view id) override;
  std::size_t purge_queue() override;
  HealthCounts health() override;
  void worker_begin(std::string_view worker) override;
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

  // The asynchronous form forwards to the wrapped store's own (a pipelined store stays pipelined)
  // and does the accounting in the completion, so it never waits for the store.
  bool completes_inline() const override { return inner_->completes_inline(); }
  void close() override { inner_->close(); }
  void async_submit(NewJob job, Completion<SubmitResult> done) override;
  void async_status(std::string id, Completion<std::optional<JobRecord>> done) override;
  void async_stream(std::string id, Completion<std::optional<StreamBatch>> done) override;
  void async_read_stream(std::string id, std::size_t cursor,
                         Completion<std::optional<StreamBatch>> done) override;
  void async_cancel(std::string id, Completion<std::optional<JobStatus>> done) override;
  void async_retry(std::string id, Completion<RetryOutcome> done) override;
  void async_purge_queue(Completion<std::size_t> done) override;
  void async_health(Completion<HealthCounts> done) override;
  void async_worker_begin(std::string worker, Completion<Done> done) override;
  void async_take(std::string worker, std::size_t max_jobs,
                  Completion<std::vector<TakenJob>> done) override;
  void async_release(std::string worker, std::vector<TakenJob> taken,
                     Completion<Done> done) override;
  void async_post_result(std::string worker, std::string job, WorkerResult result,
                         Completion<PostOutcome> done) override;
  void async_post_stream(std::string worker, std::string job, std::string chunk_json,
                         Completion<PostOutcome> done) override;
  void async_ping(std::string worker, std::vector<std::string> job_ids,
                  Completion<Done> done) override;
  void async_report_in_progress(std::string worker, bool holding, Completion<Done> done) override;
  void async_take_stop_requests(std::string worker,
                                Completion<std::vector<std::string>> done) override;
  void async_sweep(Completion<Done> done) override;

  // Sets the gauges (jobs by state, queue depth, workers) and the requeue counter from the wrapped
  // store's health; the server asks for the health (asynchronously) before each scrape. The plain
  // form asks for it itself (tests, tools).
  void collect(const HealthCounts& h);
  void collect() { collect(health()); }

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
  // begin_op() returns the start of a sampled call, or the epoch for the others; end_op() records it.
  Clock::time_point begin_op(StoreOp op);
  void end_op(StoreOp op, Clock::time_point start);
  class Timed {
   public:
    Timed(MeteredStore& store, StoreOp op) : op_(op), store_(store), start_(store.begin_op(op)) {}
    ~Timed() { store_.end_op(op_, start_); }
    Timed(const Timed&) = delete;
    Timed& operator=(const Timed&) = delete;

   private:
    StoreOp op_;
    MeteredStore& store_;
    Clock::time_point start_;
  };
  // `done` wrapped: the call's time recorded, then `after(value)` when it succeeded, then `done`.
  template <class T, class After>
  Completion<T> then(StoreOp op, Completion<T> done, After after) {
    return [this, op, start = begin_op(op), done = std::move(done), after = std::move(after)](
               std::exception_ptr e, T value) mutable {
      end_op(op, start);
      if (!e) after(value);
      done(std::move(e), std::move(value));  // moved: see RedisStore::wait()
    };
  }
  template <class T>
  Completion<T> then(StoreOp op, Completion<T> done) {
    return then(op, std::move(done), [](const T&) {});
  }
  // The accounting around each operation, shared by its plain and asynchronous forms.
  void track_submit(const NewJob& job);
  void submitted(const std::string& id, std::size_t bytes, const SubmitResult& result);
  void cancelled(std::string_view id, const std::optional<JobStatus>& result);
  std::optional<Tracked> track_retry(std::string_view id);
  void retried(std::string_view id, const std::optional<Tracked>& earlier, RetryOutcome outcome);
  void purged();
  void taken(const std::vector<TakenJob>& jobs);
  void released(const std::vector<TakenJob>& taken);
  void posted(std::string_view job, bool final_result, JobStatus status, PostOutcome outcome);
  void swept();
  void settle_overdue(const std::string& id, const std::optional<JobRecord>& record,
                      StoreClock::time_point at);
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

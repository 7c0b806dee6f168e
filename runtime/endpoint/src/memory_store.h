// JobStore kept in process memory: one mutex per endpoint, held only for in-memory work (never
// across I/O). Webhook events are handed to the sink after the lock is released.
#pragma once

#include <array>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store.h"
#include "watch_registry.h"

namespace podworker::endpoint {

// Heterogeneous lookup: find(std::string_view) without building a std::string.
struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};

class MemoryStore final : public JobStore {
 public:
  MemoryStore(StoreOptions options, std::function<void(TerminalEvent)> on_terminal);
  ~MemoryStore() override;

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
  PostOutcome post_result(std::string_view worker, std::string_view job, WorkerResult result) override;
  PostOutcome post_stream(std::string_view worker, std::string_view job, std::string chunk_json) override;
  void ping(std::string_view worker, const std::vector<std::string>& job_ids) override;
  void report_in_progress(std::string_view worker, bool holding) override;
  std::vector<std::string> take_stop_requests(std::string_view worker) override;

  void sweep() override;

  Subscription watch(Topic topic, std::string_view key, std::function<void()> notify) override;
  void wake_all() override;

 private:
  using time_point = StoreClock::time_point;

  struct Job;
  // What a job's deadline decides: its TTL; its executionTimeout while IN_PROGRESS, its retention
  // once ended; whether its holder still holds it (heartbeat, listing in pings).
  enum class Due : std::uint8_t { ttl, run, holder };
  // Deadlines in time order, so sweep() looks at due jobs only. An entry is due once its time has
  // passed; the job keeps the iterators of its entries to move or drop them.
  using DeadlineIndex = std::multimap<time_point, std::pair<Job*, Due>>;

  struct Job {
    NewJob spec;
    JobStatus status = JobStatus::in_queue;
    time_point submitted;  // TTL counts from here
    time_point queued;     // delayTime counts from here (reset by /retry)
    time_point started;
    time_point finished;
    time_point listed;  // taken, or last listed by its holder's ping
    // This lease's holder has listed the job in a ping or posted for it: the take reached it.
    bool acknowledged = false;
    int unacknowledged_requeues = 0;  // takes lost on their way (check_holder())
    bool has_started = false;
    std::string worker;
    std::string output_json;
    std::string error;
    bool has_error = false;
    std::string progress_json;
    std::vector<std::string> chunks;  // this run's
    std::size_t chunk_base = 0;       // cursor of chunks[0]: earlier runs' chunks are dropped
    std::size_t delivered = 0;        // cursor of the JSON /stream poll
    std::uint64_t lease = 0;          // counts takes; a release() names the one it gives back
    int requeues = 0;
    std::uint64_t queue_seq = 0;  // a queue entry is live only while its seq matches
    std::size_t queued_bytes = 0;  // counted in MemoryStore::queued_bytes_ while IN_QUEUE
    std::array<DeadlineIndex::iterator, 3> due{};
    std::array<bool, 3> scheduled{};
  };
  struct QueueEntry {
    std::shared_ptr<Job> job;
    std::uint64_t seq;
  };
  // A stop this worker was sent and has not been seen to act on (its ping still lists the job, or
  // it has not pinged since).
  struct SentStop {
    std::string job_id;
    int reannounced = 0;  // by job-take's job_in_progress=1, which names no job
  };
  struct Worker {
    time_point last_seen;  // last sign of life: a request started, or a ping
    time_point last_ping;
    bool pinged = false;
    std::vector<std::string> stop;  // for the next job-stop answer, no duplicates
    std::deque<SentStop> sent;      // bounded: kMaxSentStops
  };
  using Events = std::vector<TerminalEvent>;

  JobRecord record(const Job& job) const;
  time_point now() const { return clock_->now(); }
  void enqueue(const std::shared_ptr<Job>& job, bool front);
  void leave_queue(Job& job);
  void new_run(Job& job);
  void requeue_lost(const std::shared_ptr<Job>& job, const std::string& why, time_point now, Events& events);
  void finish(Job& job, JobStatus status, time_point now, Events& events);
  PostOutcome holder_check(const Job& job, std::string_view worker, std::string_view what) const;
  void schedule(Job& job, Due due, time_point at);
  void unschedule(Job& job, Due due);
  void unschedule_all(Job& job);
  void check_holder(const std::shared_ptr<Job>& job, time_point at, Events& events);
  // A sign of life of `worker` (recorded if new). mu_ held.
  Worker& seen(std::string_view worker);
  void request_stop(const std::string& worker, const std::string& job_id);
  void queue_stop(Worker& worker, std::string_view worker_id, std::string_view job_id);
  void notify(Topic topic, std::string_view key);
  void emit(Events& events);
  std::shared_ptr<Job> find_job(std::string_view id);

  const StoreOptions options_;
  const std::shared_ptr<const StoreClock> clock_;
  const std::function<void(TerminalEvent)> on_terminal_;

  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Job>, StringHash, std::equal_to<>> jobs_;
  std::deque<QueueEntry> queue_;
  std::deque<QueueEntry> low_queue_;  // policy.lowPriority: taken only when queue_ is empty
  std::unordered_map<std::string, Worker, StringHash, std::equal_to<>> workers_;
  DeadlineIndex deadlines_;
  std::size_t queued_ = 0;  // jobs IN_QUEUE (the deques also hold dead entries)
  std::uint64_t retried_ = 0;
  std::uint64_t next_seq_ = 0;
  std::size_t queued_bytes_ = 0;  // payload bytes of IN_QUEUE jobs (StoreOptions::max_queued_bytes)

  // Its own lock, taken under mu_ (never the other way round): a watch comes and goes without
  // waiting for a store operation.
  WatchRegistry watches_;
};

}  // namespace podworker::endpoint

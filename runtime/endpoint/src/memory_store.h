// JobStore kept in process memory: one mutex per endpoint, held only for in-memory work (never
// across I/O). Webhook events are handed to the sink after the lock is released.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "store.h"

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
  std::optional<JobSnapshot> status(std::string_view id) override;
  std::optional<StreamBatch> stream(std::string_view id) override;
  std::optional<JobStatus> cancel(std::string_view id) override;
  RetryOutcome retry(std::string_view id) override;
  std::size_t purge_queue() override;
  HealthCounts health() override;

  void worker_begin(std::string_view worker) override;
  void worker_end(std::string_view worker) override;
  std::vector<std::string> take(std::string_view worker, std::size_t max_jobs) override;
  PostOutcome post_result(std::string_view worker, std::string_view job, WorkerResult result) override;
  PostOutcome post_stream(std::string_view worker, std::string_view job, std::string chunk_json) override;
  void ping(std::string_view worker, const std::vector<std::string>& job_ids) override;
  void report_in_progress(std::string_view worker, bool holding) override;
  std::vector<std::string> take_stop_requests(std::string_view worker) override;

  void sweep() override;

  Subscription watch(Topic topic, std::string_view key, std::function<void()> notify) override;
  void wake_all() override;

 private:
  using Clock = std::chrono::steady_clock;

  struct Job {
    NewJob spec;
    JobStatus status = JobStatus::in_queue;
    Clock::time_point submitted;  // TTL counts from here
    Clock::time_point queued;     // delayTime counts from here (reset by /retry)
    Clock::time_point started;
    Clock::time_point finished;
    bool has_started = false;
    std::string worker;
    std::string output_json;
    std::string error;
    bool has_error = false;
    std::string progress_json;
    std::vector<std::string> chunks;
    std::size_t delivered = 0;
    int requeues = 0;
    std::uint64_t queue_seq = 0;  // a queue entry is live only while its seq matches
    std::size_t queued_bytes = 0;  // counted in MemoryStore::queued_bytes_ while IN_QUEUE
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
    Clock::time_point last_seen;
    int active_requests = 0;
    std::vector<std::string> stop;  // for the next job-stop answer, no duplicates
    std::deque<SentStop> sent;      // bounded: kMaxSentStops
  };
  struct Watch {
    std::uint64_t token;
    std::function<void()> notify;
  };
  using Events = std::vector<TerminalEvent>;

  static std::string watch_key(Topic topic, std::string_view key);
  std::string status_json(const Job& job) const;
  void enqueue(const std::shared_ptr<Job>& job, bool front);
  void release_queued(Job& job);
  void finish(Job& job, JobStatus status, Clock::time_point now, Events& events);
  void request_stop(const std::string& worker, const std::string& job_id);
  void queue_stop(Worker& worker, std::string_view worker_id, std::string_view job_id);
  void notify(Topic topic, std::string_view key);
  void emit(Events& events);
  std::shared_ptr<Job> find_job(std::string_view id);

  const StoreOptions options_;
  const std::function<void(TerminalEvent)> on_terminal_;

  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Job>, StringHash, std::equal_to<>> jobs_;
  std::deque<QueueEntry> queue_;
  std::deque<QueueEntry> low_queue_;  // policy.lowPriority: taken only when queue_ is empty
  std::unordered_map<std::string, Worker, StringHash, std::equal_to<>> workers_;
  std::uint64_t retried_ = 0;
  std::uint64_t next_seq_ = 0;
  std::size_t queued_bytes_ = 0;  // payload bytes of IN_QUEUE jobs (StoreOptions::max_queued_bytes)

  std::unordered_map<std::string, std::vector<Watch>, StringHash, std::equal_to<>> watches_;
  std::uint64_t next_token_ = 0;
};

}  // namespace podworker::endpoint

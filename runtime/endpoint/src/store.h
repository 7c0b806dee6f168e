// The job store: every job of one endpoint, its queue, the workers that hold jobs, and the state
// machine IN_QUEUE -> IN_PROGRESS -> COMPLETED | FAILED | CANCELLED | TIMED_OUT.
//
// The HTTP layer only speaks to this interface, which speaks records (job.h): JSON bodies are
// rendered in the HTTP layer. Long polls are built from watch(): a callback fired when something
// the caller waits for may have changed, after which the caller asks again.
//
// The asynchronous seam. Every operation has two forms: a plain call (`status(id)`) and a
// completion-based one (`async_status(id, done)`), which returns at once and calls `done` with the
// result, or with the exception the operation ended with (StoreUnavailable for a store that could
// not be reached), when the operation is over. The HTTP layer uses only the async form (through
// server.cpp's ask(), which resumes the request's coroutine on its own strand), so an I/O thread
// never waits for a network round trip:
//   - MemoryStore's operations are short in-memory work under a lock: it implements the plain
//     calls, the async ones run them inline (the defaults below) and completes_inline() says so,
//     so the HTTP layer calls them directly and pays nothing for the seam.
//   - RedisStore implements the async form: each operation is one Lua script (a status read, one
//     HMGET) sent on the store's own connection, pipelined with the other commands awaiting
//     replies (redis_pipeline.h); `done` runs on the pipeline's thread (or inline, for a status
//     read the store can answer from a script's reply). Its plain calls wait for the async ones
//     (tests, tools).
// A `done` must be quick and must not wait for another store operation (it may start one).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "job.h"

namespace podworker::endpoint {

// Unregisters a watch when destroyed. Move-only.
class Subscription {
 public:
  Subscription() = default;
  explicit Subscription(std::function<void()> cancel) : cancel_(std::move(cancel)) {}
  Subscription(Subscription&& other) noexcept : cancel_(std::exchange(other.cancel_, nullptr)) {}
  Subscription& operator=(Subscription&& other) noexcept {
    if (this != &other) {
      reset();
      cancel_ = std::exchange(other.cancel_, nullptr);
    }
    return *this;
  }
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;
  ~Subscription() { reset(); }
  void reset() {
    if (cancel_) std::exchange(cancel_, nullptr)();
  }

 private:
  std::function<void()> cancel_;
};

// What a watch() waits for: the queue (new or requeued jobs), one job (it ended, was requeued or
// removed, or has new progress or a stream chunk; being taken is none of these: every job watcher
// waits for an end, a chunk or progress, and a wake-up at each take would cost every /runsync one
// more status read), or one worker's stop channel. A queue watch is woken once per queued job, never
// all at once: a woken watcher is expected to take(); if it drops its watch without having taken
// the job, the store wakes the next one, so a job never waits while a poller does.
enum class Topic : std::uint8_t { queue, job, stop };

// A store's time source. The server passes the steady clock; tests drive a fake one, so every rule
// of the state machine can be checked without sleeping.
class StoreClock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~StoreClock() = default;
  virtual time_point now() const = 0;
};

class SteadyStoreClock final : public StoreClock {
 public:
  time_point now() const override { return std::chrono::steady_clock::now(); }
};

struct StreamBatch {
  JobStatus status;
  std::vector<std::string> chunks;  // JSON text of each chunk
  std::size_t next = 0;             // cursor for the next read_stream()
};

// submit(): queued, or refused because the queued jobs' payloads would pass
// StoreOptions::max_queued_bytes (nothing is stored then).
struct SubmitResult {
  bool accepted = true;
  std::size_t job_bytes = 0;     // this job's payload (queued_payload_bytes)
  std::size_t queued_bytes = 0;  // held by queued jobs before this one
};

enum class RetryOutcome : std::uint8_t { requeued, not_found, not_retryable };
// job-done / job-stream: accepted; ignored (the job ended while this worker held it: never
// overwrite); refused (this worker does not hold the job: it never took it, or it lost it to a
// requeue; the job is untouched); or unknown job.
enum class PostOutcome : std::uint8_t { accepted, ignored, refused, not_found };

// An async operation's completion: (nullptr, result), or (the exception, a default value).
template <class T>
using Completion = std::function<void(std::exception_ptr, T)>;
struct Done {};  // the result of an operation that returns nothing

struct HealthCounts {
  std::size_t completed = 0, failed = 0, in_progress = 0, in_queue = 0;
  std::uint64_t retried = 0;
  std::size_t workers_idle = 0, workers_running = 0;
};

// Sent when a job reaches a terminal state and has a webhook.
struct TerminalEvent {
  std::string webhook;
  JobRecord job;
};

class JobStore {
 public:
  virtual ~JobStore() = default;

  // ---- client API
  [[nodiscard]] virtual SubmitResult submit(NewJob job) = 0;
  virtual std::optional<JobRecord> status(std::string_view id) = 0;
  // The JSON /stream poll (RunPod's meaning): the chunks no earlier stream() call has returned.
  virtual std::optional<StreamBatch> stream(std::string_view id) = 0;
  // The chunks from `cursor` on, taking nothing from anyone: SSE readers and internal consumers
  // start at 0 and pass back `next`. Cursors count over the job's whole life, so after a requeue a
  // reader continues with the new run's chunks and never sees the old run's again.
  virtual std::optional<StreamBatch> read_stream(std::string_view id, std::size_t cursor) = 0;
  // The job's status after the request: CANCELLED, or its terminal state if it had already ended.
  virtual std::optional<JobStatus> cancel(std::string_view id) = 0;
  virtual RetryOutcome retry(std::string_view id) = 0;
  virtual std::size_t purge_queue() = 0;
  virtual HealthCounts health() = 0;

  // ---- worker API. The start of every worker request and every ping is a sign of life; the
  // heartbeat grace counts from the last one. An open request is not: the process behind a long
  // poll may be gone. worker_begin() marks the start of a request.
  virtual void worker_begin(std::string_view worker) = 0;
  // Up to `max_jobs` queued jobs, now IN_PROGRESS and leased to `worker` (the lease names this
  // take).
  virtual std::vector<TakenJob> take(std::string_view worker, std::size_t max_jobs) = 0;
  // Jobs a take() handed out that never reached the worker (the response could not be written, or
  // the poller had gone): back to the head of the queue, no retry counted. A lease that has moved
  // on (the job ended, was requeued or taken again) is left alone.
  virtual void release(std::string_view worker, const std::vector<TakenJob>& taken) = 0;
  // Results, progress and stream chunks are taken only from the worker holding the job's lease.
  // A post is itself the sign of life of the request that brings it (no worker_begin() needed).
  // A result that comes once the job's executionTimeout has run out ends it TIMED_OUT, as the sweep
  // would have: the worker knows the deadline (job-take's policy) and may report before the sweep.
  virtual PostOutcome post_result(std::string_view worker, std::string_view job,
                                  WorkerResult result) = 0;
  virtual PostOutcome post_stream(std::string_view worker, std::string_view job,
                                  std::string chunk_json) = 0;
  // Heartbeat with the ids of the jobs the worker holds. A held job that has ended, is gone or is
  // no longer assigned to this worker is queued for its stop channel again: a worker can drop a
  // stop request that arrives before it has registered the job (the runpod SDK does so for ~100 ms
  // after taking one), and the job would then run to its end. Each ping re-announces an id at most
  // once. A job its holder keeps pinging without listing for longer than the grace is lost like a
  // job of a silent worker: the worker is alive but can deliver neither its result nor its error.
  virtual void ping(std::string_view worker, const std::vector<std::string>& job_ids) = 0;
  // job-take's job_in_progress flag: holding, stops this worker was sent and has not been seen to
  // act on are queued again (at most a few times each); not holding, they are forgotten. Like a
  // post, it is the sign of life of the request that carries it.
  virtual void report_in_progress(std::string_view worker, bool holding) = 0;
  // Jobs the worker must stop (cancelled, timed out, expired, reported after they ended).
  virtual std::vector<std::string> take_stop_requests(std::string_view worker) = 0;

  // ---- time: execution timeouts, TTLs, retention, heartbeat loss. Called periodically.
  virtual void sweep() = 0;

  // ---- change notification. `notify` may run on any thread, possibly under the store's lock: it
  // must be quick and must not call back into the store.
  virtual Subscription watch(Topic topic, std::string_view key, std::function<void()> notify) = 0;
  // Fires every watch (used at shutdown so long polls end).
  virtual void wake_all() = 0;

  // ---- the asynchronous form (see the top of this file). The defaults run the plain call inline.
  // True when every async operation calls `done` before it returns.
  virtual bool completes_inline() const { return true; }
  // Completes every operation still pending with StoreUnavailable and refuses new ones. The server
  // calls it once its I/O threads have stopped, while the executor `done`s post to still exists.
  virtual void close() {}

  virtual void async_submit(NewJob job, Completion<SubmitResult> done) {
    complete_inline(done, [&] { return submit(std::move(job)); });
  }
  virtual void async_status(std::string id, Completion<std::optional<JobRecord>> done) {
    complete_inline(done, [&] { return status(id); });
  }
  virtual void async_stream(std::string id, Completion<std::optional<StreamBatch>> done) {
    complete_inline(done, [&] { return stream(id); });
  }
  virtual void async_read_stream(std::string id, std::size_t cursor,
                                 Completion<std::optional<StreamBatch>> done) {
    complete_inline(done, [&] { return read_stream(id, cursor); });
  }
  virtual void async_cancel(std::string id, Completion<std::optional<JobStatus>> done) {
    complete_inline(done, [&] { return cancel(id); });
  }
  virtual void async_retry(std::string id, Completion<RetryOutcome> done) {
    complete_inline(done, [&] { return retry(id); });
  }
  virtual void async_purge_queue(Completion<std::size_t> done) {
    complete_inline(done, [&] { return purge_queue(); });
  }
  virtual void async_health(Completion<HealthCounts> done) {
    complete_inline(done, [&] { return health(); });
  }
  virtual void async_worker_begin(std::string worker, Completion<Done> done) {
    complete_inline(done, [&] {
      worker_begin(worker);
      return Done{};
    });
  }
  virtual void async_take(std::string worker, std::size_t max_jobs,
                          Completion<std::vector<TakenJob>> done) {
    complete_inline(done, [&] { return take(worker, max_jobs); });
  }
  virtual void async_release(std::string worker, std::vector<TakenJob> taken,
                             Completion<Done> done) {
    complete_inline(done, [&] {
      release(worker, taken);
      return Done{};
    });
  }
  virtual void async_post_result(std::string worker, std::string job, WorkerResult result,
                                 Completion<PostOutcome> done) {
    complete_inline(done, [&] { return post_result(worker, job, std::move(result)); });
  }
  virtual void async_post_stream(std::string worker, std::string job, std::string chunk_json,
                                 Completion<PostOutcome> done) {
    complete_inline(done, [&] { return post_stream(worker, job, std::move(chunk_json)); });
  }
  virtual void async_ping(std::string worker, std::vector<std::string> job_ids,
                          Completion<Done> done) {
    complete_inline(done, [&] {
      ping(worker, job_ids);
      return Done{};
    });
  }
  virtual void async_report_in_progress(std::string worker, bool holding, Completion<Done> done) {
    complete_inline(done, [&] {
      report_in_progress(worker, holding);
      return Done{};
    });
  }
  virtual void async_take_stop_requests(std::string worker,
                                        Completion<std::vector<std::string>> done) {
    complete_inline(done, [&] { return take_stop_requests(worker); });
  }
  virtual void async_sweep(Completion<Done> done) {
    complete_inline(done, [&] {
      sweep();
      return Done{};
    });
  }

 protected:
  // Runs `op` and completes `done` with its value or its exception.
  template <class T, class Op>
  static void complete_inline(const Completion<T>& done, Op&& op) {
    T value{};
    std::exception_ptr error;
    try {
      value = op();
    } catch (...) {
      error = std::current_exception();
    }
    done(error, std::move(value));
  }
};

struct StoreOptions {
  std::chrono::milliseconds retention{30 * 60'000};
  std::chrono::milliseconds runsync_retention{60'000};
  std::chrono::milliseconds heartbeat_grace{60'000};
  int retry_limit = 3;
  // Payload bytes queued jobs may hold together; a submit beyond it is refused. 0 = no cap.
  // Jobs requeued by /retry or after a heartbeat loss are counted but never refused: they were
  // accepted once already.
  std::size_t max_queued_bytes = std::size_t{1} << 30;
  std::shared_ptr<const StoreClock> clock;  // null: the steady clock
};

}  // namespace podworker::endpoint

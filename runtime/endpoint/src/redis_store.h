// JobStore on a Redis server shared by several endpoint processes (replicas of one endpoint): every
// state transition is one Lua script (redis_scripts.cpp), so it is atomic across replicas; change
// notifications travel by pub/sub. Key layout and what survives what: docs/local.md, "Running
// replicas on Redis".
//
// Delivery is at least once, by lease: take() leases a job to its worker; the worker's requests
// and pings keep the lease; a sweep (run by every replica, idempotent) requeues the jobs of a
// worker silent for longer than the heartbeat grace (retried++) and FAILs them at the retry limit.
//
// Operations are asynchronous (store.h, "The asynchronous seam"): each sends its script on the
// store's pipeline (redis_pipeline.h), one connection whose thread batches the commands of every
// caller, and completes on that thread when the reply is in. The plain calls wait for the async
// ones.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "redis_connection.h"
#include "redis_pipeline.h"
#include "redis_scripts.h"
#include "store.h"
#include "watch_registry.h"

namespace podworker::endpoint {

class RedisStore final : public JobStore {
 public:
  // Connects, loads the scripts and subscribes to the endpoint's change channel. Throws RedisError
  // when the server cannot be reached (the endpoint then refuses to start).
  RedisStore(const RedisAddress& address, std::string endpoint_id, StoreOptions options,
             std::function<void(TerminalEvent)> on_terminal);
  ~RedisStore() override;
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

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

  bool completes_inline() const override { return false; }
  void close() override;
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

  const std::string& key_prefix() const { return prefix_; }

 private:
  // A script's whole reply ({result, notes, events, logs, ended}), or the error it failed with.
  using ScriptDone = std::function<void(std::exception_ptr, const redisReply*)>;

  std::int64_t now_ms() const;
  // FCALL's arguments for one script: the function, the common arguments, then `args`.
  std::vector<std::string> script_argv(redis_script::Id script,
                                       std::vector<std::string> args) const;
  // Tells the scripts that this replica now listens on the change channel (redis_scripts.cpp,
  // others_listen()), on a connection of its own; waits for the answer.
  void announce_listening() const;
  // Sends one script with the common arguments and `args`; on its reply applies its notes, logs
  // and events, then calls `done` (on the pipeline's thread).
  void run(redis_script::Id script, std::vector<std::string> args, ScriptDone done);
  // run(), with `parse` turning the script's result (the reply's first element) into a T.
  template <class T, class Parse>
  void run_parsed(redis_script::Id script, std::vector<std::string> args, Completion<T> done,
                  Parse parse);
  // A plain call: starts the async form and waits for it.
  template <class T, class Start>
  static T wait(Start start);
  // One call of the sweep script, which handles at most kSweepBatch due deadlines of each kind
  // and says whether more are due; then, up to kMaxSweepRounds calls, the next one.
  static constexpr int kSweepBatch = 256;
  static constexpr int kMaxSweepRounds = 128;
  void sweep_round(int round, Completion<Done> done);
  void apply(const redisReply& reply);
  void remember_ended(const redisReply& fields);
  std::optional<JobRecord> take_ended(const std::string& id);
  void apply_note(std::string_view note);
  void fire(Topic topic, std::string_view key);
  void fire_all();
  void queue_changed(std::uint64_t version, std::size_t length);
  void subscriber_loop(std::stop_token stop, std::unique_ptr<RedisConnection> c);
  void on_message(const redisReply& reply);
  PostOutcome post_outcome(const redisReply& result, std::string_view worker, std::string_view job,
                           std::string_view what) const;

  const RedisAddress address_;
  const std::string endpoint_id_;
  const std::string prefix_;  // pw:{endpoint}:
  const std::string origin_;  // this instance, in every publish
  const StoreOptions options_;
  const std::shared_ptr<const StoreClock> clock_;
  const std::int64_t wall_offset_ms_;  // wall clock minus the store clock, taken at construction
  const std::function<void(TerminalEvent)> on_terminal_;

  WatchRegistry watches_;
  // Records of jobs that ended COMPLETED or CANCELLED through this instance's own scripts while a
  // job watch here waited for them (a /runsync, an OpenAI call, an SSE reader): the waiter's status
  // read, which comes right after the job note wakes it, is answered from here instead of asking
  // Redis again, one round trip less per /runsync job. Those states are final until the record
  // expires, so the answer is what Redis would give; an entry is taken by its first read, never
  // served past its expiry, and the oldest go beyond kMaxEnded (outputs are at most 16 KiB here).
  struct Ended {
    JobRecord record;
    std::int64_t expires_ms = 0;
  };
  static constexpr std::size_t kMaxEnded = 1024;
  std::mutex ended_mu_;
  std::unordered_map<std::string, Ended> ended_;
  std::deque<std::string> ended_order_;  // insertion order, for the bound (see remember_ended())
  std::mutex queue_mu_;              // taken before the registry's
  std::uint64_t queue_version_ = 0;  // of the last queue length given to watches_
  std::atomic<bool> sweep_failing_{false};

  // Ends the subscriber's poll at shutdown.
  WakeFd wake_;
  // Closed (joined) first at destruction: its callbacks use everything above.
  std::unique_ptr<RedisPipeline> pipeline_;
  std::jthread subscriber_;  // last: joined before anything it uses goes
};

}  // namespace podworker::endpoint

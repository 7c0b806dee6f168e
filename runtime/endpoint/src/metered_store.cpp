#include "metered_store.h"

#include <algorithm>
#include <utility>

namespace podworker::endpoint {

namespace {

constexpr std::array<std::string_view, 17> kOpNames{"submit",
                                                    "status",
                                                    "stream",
                                                    "read_stream",
                                                    "cancel",
                                                    "retry",
                                                    "purge_queue",
                                                    "health",
                                                    "worker_begin",
                                                    "take",
                                                    "release",
                                                    "post_result",
                                                    "post_stream",
                                                    "ping",
                                                    "report_in_progress",
                                                    "take_stop_requests",
                                                    "sweep"};

// How often the sweep looks for tracked jobs past their deadlines.
constexpr std::chrono::seconds kOverdueCheckInterval{1};

}  // namespace

MeteredStore::MeteredStore(std::unique_ptr<JobStore> inner, metrics::Registry& r,
                           const std::string& endpoint_id, std::shared_ptr<const StoreClock> clock)
    : inner_(std::move(inner)),
      clock_(clock ? std::move(clock) : std::make_shared<const SteadyStoreClock>()),
      submitted_(r.counter("podworker_endpoint_jobs_submitted_total",
                           "Jobs accepted by /run, /runsync and the OpenAI route.",
                           {{"endpoint", endpoint_id}})),
      refused_(r.counter(
          "podworker_endpoint_jobs_refused_total",
          "Submits refused because queued jobs would pass --max-queued-bytes (answered 429).",
          {{"endpoint", endpoint_id}})),
      retried_(r.counter("podworker_endpoint_jobs_retried_total",
                         "FAILED or TIMED_OUT jobs queued again by /retry.",
                         {{"endpoint", endpoint_id}})),
      requeued_(r.counter("podworker_endpoint_jobs_requeued_total",
                          "Jobs queued again after their worker was lost (heartbeat grace passed).",
                          {{"endpoint", endpoint_id}})),
      delay_seconds_(
          r.histogram("podworker_endpoint_job_delay_seconds",
                      "delayTime: how long jobs waited in the queue before a worker took them.",
                      metrics::kJobBuckets, {{"endpoint", endpoint_id}})),
      execution_seconds_(r.histogram("podworker_endpoint_job_execution_seconds",
                                     "executionTime: from a worker taking a job to its result.",
                                     metrics::kJobBuckets, {{"endpoint", endpoint_id}})),
      queued_bytes_(r.gauge(
          "podworker_endpoint_queued_bytes",
          "Payload bytes (input, webhook, s3Config) the queued jobs hold (see --max-queued-bytes).",
          {{"endpoint", endpoint_id}})),
      queue_depth_(r.gauge("podworker_endpoint_queue_depth", "Jobs IN_QUEUE.",
                           {{"endpoint", endpoint_id}})) {
  for (std::size_t i = 0; i < kOpNames.size(); ++i) {
    op_calls_[i] =
        &r.counter("podworker_endpoint_store_operations_total", "Job store operations called.",
                   {{"endpoint", endpoint_id}, {"op", std::string(kOpNames[i])}});
    op_seconds_[i] = &r.histogram("podworker_endpoint_store_operation_seconds",
                                  "Latency of job store operations, one call in 8 sampled.",
                                  metrics::kLatencyBuckets,
                                  {{"endpoint", endpoint_id}, {"op", std::string(kOpNames[i])}});
  }
  for (const JobStatus s :
       {JobStatus::completed, JobStatus::failed, JobStatus::cancelled, JobStatus::timed_out}) {
    finished_[static_cast<std::size_t>(s)] =
        &r.counter("podworker_endpoint_jobs_finished_total", "Jobs that ended, by final status.",
                   {{"endpoint", endpoint_id}, {"status", std::string(status_name(s))}});
  }
  const std::array<std::string_view, 4> states{"IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED"};
  for (std::size_t i = 0; i < states.size(); ++i) {
    jobs_[i] =
        &r.gauge("podworker_endpoint_jobs",
                 "Jobs the store holds, by state (ended jobs until their retention passes; FAILED "
                 "includes TIMED_OUT).",
                 {{"endpoint", endpoint_id}, {"state", std::string(states[i])}});
  }
  workers_[0] =
      &r.gauge("podworker_endpoint_workers", "Workers seen within the heartbeat grace, by state.",
               {{"endpoint", endpoint_id}, {"state", "idle"}});
  workers_[1] =
      &r.gauge("podworker_endpoint_workers", "Workers seen within the heartbeat grace, by state.",
               {{"endpoint", endpoint_id}, {"state", "running"}});
}

void MeteredStore::finished(JobStatus status) {
  if (metrics::Counter* c = finished_[static_cast<std::size_t>(status)]) c->inc();
}

MeteredStore::Clock::time_point MeteredStore::begin_op(StoreOp op) {
  op_calls_[static_cast<std::size_t>(op)]->inc();
  thread_local unsigned calls = 0;
  return ++calls % kSampleEvery == 0 ? Clock::now() : Clock::time_point{};
}

void MeteredStore::end_op(StoreOp op, Clock::time_point start) {
  if (start != Clock::time_point{}) op_seconds_[static_cast<std::size_t>(op)]->observe_since(start);
}

// ---- the accounting

// Tracked before the store sees it: a waiting poller may take the job before submit() returns.
void MeteredStore::track_submit(const NewJob& job) {
  Shard& s = shard(job.id);
  std::lock_guard lock(s.mu);
  s.jobs.insert_or_assign(job.id,
                          Tracked{now(), false, job.policy.execution_timeout, job.policy.ttl});
}

void MeteredStore::submitted(const std::string& id, std::size_t bytes, const SubmitResult& result) {
  if (!result.accepted) {
    refused_.inc();
    Shard& s = shard(id);
    std::lock_guard lock(s.mu);
    if (auto it = s.jobs.find(id); it != s.jobs.end()) s.jobs.erase(it);
    return;
  }
  submitted_.inc();
  queued_bytes_.set(static_cast<double>(result.queued_bytes + bytes));
  std::lock_guard lock(recent_mu_);
  recent_.push_front(id);
  if (recent_.size() > kRecentJobs) recent_.pop_back();
}

void MeteredStore::cancelled(std::string_view id, const std::optional<JobStatus>& result) {
  if (!result) return;
  // Counted once: the first cancel (or end) of a job takes it off the tracked list.
  Shard& s = shard(id);
  std::lock_guard lock(s.mu);
  if (auto it = s.jobs.find(id); it != s.jobs.end()) {
    s.jobs.erase(it);
    finished(*result);
  }
}

// Tracked before the store requeues it (a poller may take it at once); forgotten if it was not.
// The job's policy is not known here any more: its deadlines are checked at the longest bounds
// (they only decide when the sweep asks the store how the job ended).
std::optional<MeteredStore::Tracked> MeteredStore::track_retry(std::string_view id) {
  Shard& s = shard(id);
  std::optional<Tracked> earlier;
  std::lock_guard lock(s.mu);
  auto it = s.jobs.find(id);
  if (it != s.jobs.end()) earlier = it->second;
  s.jobs.insert_or_assign(std::string(id), Tracked{now(), false, std::chrono::hours(24 * 7),
                                                   std::chrono::hours(24 * 7)});
  return earlier;
}

void MeteredStore::retried(std::string_view id, const std::optional<Tracked>& earlier,
                           RetryOutcome outcome) {
  if (outcome == RetryOutcome::requeued) {
    retried_.inc();
    return;
  }
  Shard& s = shard(id);
  std::lock_guard lock(s.mu);
  auto it = s.jobs.find(id);
  if (earlier) {
    if (it != s.jobs.end()) it->second = *earlier;
  } else if (it != s.jobs.end()) {
    s.jobs.erase(it);
  }
}

// Every queued job is gone: they ended without a status, so they are only forgotten.
void MeteredStore::purged() {
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    std::erase_if(s.jobs, [](const auto& entry) { return !entry.second.taken; });
  }
  queued_bytes_.set(0);
}

void MeteredStore::taken(const std::vector<TakenJob>& jobs) {
  if (jobs.empty()) return;
  const auto at = now();
  double bytes = 0;
  for (const TakenJob& job : jobs) {
    bytes +=
        static_cast<double>(job.input_json.size() + job.webhook.size() + job.s3_config_json.size());
    Shard& s = shard(job.id);
    std::lock_guard lock(s.mu);
    auto it = s.jobs.find(job.id);
    if (it == s.jobs.end()) continue;  // submitted through another replica: its times are there
    if (!it->second.taken)
      delay_seconds_.observe(std::chrono::duration<double>(at - it->second.since).count());
    it->second.since = at;
    it->second.taken = true;
  }
  queued_bytes_.set(std::max(0.0, queued_bytes_.value() - bytes));
}

void MeteredStore::released(const std::vector<TakenJob>& taken) {
  for (const TakenJob& job : taken) {
    Shard& s = shard(job.id);
    std::lock_guard lock(s.mu);
    if (auto it = s.jobs.find(job.id); it != s.jobs.end()) it->second.taken = false;
  }
}

void MeteredStore::posted(std::string_view job, bool final_result, JobStatus status,
                          PostOutcome outcome) {
  if (outcome != PostOutcome::accepted || !final_result) return;
  const auto at = now();
  Shard& s = shard(job);
  std::unique_lock lock(s.mu);
  auto it = s.jobs.find(job);
  if (it == s.jobs.end()) {
    // Submitted through another replica: the result came through this one, so it counts here.
    lock.unlock();
    finished(status);
    return;
  }
  const Tracked tracked = it->second;
  s.jobs.erase(it);
  lock.unlock();
  if (tracked.taken)
    execution_seconds_.observe(std::chrono::duration<double>(at - tracked.since).count());
  // A result past the executionTimeout ends the job TIMED_OUT in the store (store.h).
  if (tracked.taken && at - tracked.since >= tracked.execution_timeout)
    status = JobStatus::timed_out;
  finished(status);
}

void MeteredStore::swept() {
  const auto at = now();
  {
    std::lock_guard lock(collect_mu_);
    if (at < next_overdue_check_) return;
    next_overdue_check_ = at + kOverdueCheckInterval;
  }
  check_overdue();
}

// Jobs the store ended on its own (executionTimeout, TTL, a lost worker at the retry limit) are
// found here: a tracked job past its deadline is looked up once, and counted by how it ended. The
// lookups are asynchronous: this runs in a sweep's completion, which must not wait for the store.
void MeteredStore::check_overdue() {
  const auto at = now();
  std::vector<std::string> overdue;
  for (Shard& s : shards_) {
    std::lock_guard lock(s.mu);
    for (const auto& [id, t] : s.jobs) {
      if (at - t.since > (t.taken ? t.execution_timeout : t.ttl)) overdue.push_back(id);
    }
  }
  for (std::string& id : overdue) {
    inner_->async_status(id, [this, id, at](std::exception_ptr e, std::optional<JobRecord> record) {
      if (!e) settle_overdue(id, record, at);
    });
  }
}

void MeteredStore::settle_overdue(const std::string& id, const std::optional<JobRecord>& record,
                                  StoreClock::time_point at) {
  Shard& s = shard(id);
  std::lock_guard lock(s.mu);
  auto it = s.jobs.find(id);
  if (it == s.jobs.end()) return;  // ended meanwhile, and counted there
  if (!record) {
    s.jobs.erase(it);  // expired (TTL) or purged: gone without a status
  } else if (is_terminal(record->status)) {
    // Only the store ends a job TIMED_OUT, or FAILED while this replica holds it as taken (a lost
    // worker at the retry limit); any other end came through a request, counted where it arrived
    // (behind replicas, maybe another one).
    const bool here = record->status == JobStatus::timed_out ||
                      (record->status == JobStatus::failed && it->second.taken);
    s.jobs.erase(it);
    if (here) finished(record->status);
  } else {
    // Requeued after a lost worker (and maybe taken again): count its times from now on.
    it->second.since = at;
    it->second.taken = record->status == JobStatus::in_progress;
  }
}

// ---- the plain form

SubmitResult MeteredStore::submit(NewJob job) {
  const std::string id = job.id;
  const std::size_t bytes = queued_payload_bytes(job);
  track_submit(job);
  SubmitResult result;
  {
    Timed timed(*this, StoreOp::submit);
    result = inner_->submit(std::move(job));
  }
  submitted(id, bytes, result);
  return result;
}

std::optional<JobRecord> MeteredStore::status(std::string_view id) {
  Timed timed(*this, StoreOp::status);
  return inner_->status(id);
}

std::optional<StreamBatch> MeteredStore::stream(std::string_view id) {
  Timed timed(*this, StoreOp::stream);
  return inner_->stream(id);
}

std::optional<StreamBatch> MeteredStore::read_stream(std::string_view id, std::size_t cursor) {
  Timed timed(*this, StoreOp::read_stream);
  return inner_->read_stream(id, cursor);
}

std::optional<JobStatus> MeteredStore::cancel(std::string_view id) {
  std::optional<JobStatus> result;
  {
    Timed timed(*this, StoreOp::cancel);
    result = inner_->cancel(id);
  }
  cancelled(id, result);
  return result;
}

RetryOutcome MeteredStore::retry(std::string_view id) {
  const std::optional<Tracked> earlier = track_retry(id);
  RetryOutcome outcome;
  {
    Timed timed(*this, StoreOp::retry);
    outcome = inner_->retry(id);
  }
  retried(id, earlier, outcome);
  return outcome;
}

std::size_t MeteredStore::purge_queue() {
  std::size_t removed;
  {
    Timed timed(*this, StoreOp::purge_queue);
    removed = inner_->purge_queue();
  }
  purged();
  return removed;
}

HealthCounts MeteredStore::health() {
  Timed timed(*this, StoreOp::health);
  return inner_->health();
}

void MeteredStore::worker_begin(std::string_view worker) {
  Timed timed(*this, StoreOp::worker_begin);
  inner_->worker_begin(worker);
}

std::vector<TakenJob> MeteredStore::take(std::string_view worker, std::size_t max_jobs) {
  std::vector<TakenJob> jobs;
  {
    Timed timed(*this, StoreOp::take);
    jobs = inner_->take(worker, max_jobs);
  }
  taken(jobs);
  return jobs;
}

void MeteredStore::release(std::string_view worker, const std::vector<TakenJob>& taken) {
  {
    Timed timed(*this, StoreOp::release);
    inner_->release(worker, taken);
  }
  released(taken);
}

PostOutcome MeteredStore::post_result(std::string_view worker, std::string_view job,
                                      WorkerResult result) {
  const bool final_result = result.kind != WorkerResult::Kind::progress;
  const JobStatus status =
      result.kind == WorkerResult::Kind::error ? JobStatus::failed : JobStatus::completed;
  PostOutcome outcome;
  {
    Timed timed(*this, StoreOp::post_result);
    outcome = inner_->post_result(worker, job, std::move(result));
  }
  posted(job, final_result, status, outcome);
  return outcome;
}

PostOutcome MeteredStore::post_stream(std::string_view worker, std::string_view job,
                                      std::string chunk_json) {
  Timed timed(*this, StoreOp::post_stream);
  return inner_->post_stream(worker, job, std::move(chunk_json));
}

void MeteredStore::ping(std::string_view worker, const std::vector<std::string>& job_ids) {
  Timed timed(*this, StoreOp::ping);
  inner_->ping(worker, job_ids);
}

void MeteredStore::report_in_progress(std::string_view worker, bool holding) {
  Timed timed(*this, StoreOp::report_in_progress);
  inner_->report_in_progress(worker, holding);
}

std::vector<std::string> MeteredStore::take_stop_requests(std::string_view worker) {
  Timed timed(*this, StoreOp::take_stop_requests);
  return inner_->take_stop_requests(worker);
}

void MeteredStore::sweep() {
  {
    Timed timed(*this, StoreOp::sweep);
    inner_->sweep();
  }
  swept();
}

// ---- the asynchronous form

void MeteredStore::async_submit(NewJob job, Completion<SubmitResult> done) {
  std::string id = job.id;
  const std::size_t bytes = queued_payload_bytes(job);
  track_submit(job);
  inner_->async_submit(std::move(job),
                       then(StoreOp::submit, std::move(done),
                            [this, id = std::move(id), bytes](const SubmitResult& r) {
                              submitted(id, bytes, r);
                            }));
}

void MeteredStore::async_status(std::string id, Completion<std::optional<JobRecord>> done) {
  inner_->async_status(std::move(id), then(StoreOp::status, std::move(done)));
}

void MeteredStore::async_stream(std::string id, Completion<std::optional<StreamBatch>> done) {
  inner_->async_stream(std::move(id), then(StoreOp::stream, std::move(done)));
}

void MeteredStore::async_read_stream(std::string id, std::size_t cursor,
                                     Completion<std::optional<StreamBatch>> done) {
  inner_->async_read_stream(std::move(id), cursor, then(StoreOp::read_stream, std::move(done)));
}

void MeteredStore::async_cancel(std::string id, Completion<std::optional<JobStatus>> done) {
  std::string key = id;
  inner_->async_cancel(std::move(id),
                       then(StoreOp::cancel, std::move(done),
                            [this, key = std::move(key)](const std::optional<JobStatus>& r) {
                              cancelled(key, r);
                            }));
}

void MeteredStore::async_retry(std::string id, Completion<RetryOutcome> done) {
  std::optional<Tracked> earlier = track_retry(id);
  std::string key = id;
  inner_->async_retry(std::move(id), then(StoreOp::retry, std::move(done),
                                          [this, key = std::move(key), earlier](RetryOutcome r) {
                                            retried(key, earlier, r);
                                          }));
}

void MeteredStore::async_purge_queue(Completion<std::size_t> done) {
  inner_->async_purge_queue(
      then(StoreOp::purge_queue, std::move(done), [this](std::size_t) { purged(); }));
}

void MeteredStore::async_health(Completion<HealthCounts> done) {
  inner_->async_health(then(StoreOp::health, std::move(done)));
}

void MeteredStore::async_worker_begin(std::string worker, Completion<Done> done) {
  inner_->async_worker_begin(std::move(worker), then(StoreOp::worker_begin, std::move(done)));
}

void MeteredStore::async_take(std::string worker, std::size_t max_jobs,
                              Completion<std::vector<TakenJob>> done) {
  inner_->async_take(std::move(worker), max_jobs,
                     then(StoreOp::take, std::move(done),
                          [this](const std::vector<TakenJob>& jobs) { taken(jobs); }));
}

void MeteredStore::async_release(std::string worker, std::vector<TakenJob> taken,
                                 Completion<Done> done) {
  std::vector<TakenJob> copy = taken;
  inner_->async_release(std::move(worker), std::move(taken),
                        then(StoreOp::release, std::move(done),
                             [this, copy = std::move(copy)](Done) { released(copy); }));
}

void MeteredStore::async_post_result(std::string worker, std::string job, WorkerResult result,
                                     Completion<PostOutcome> done) {
  const bool final_result = result.kind != WorkerResult::Kind::progress;
  const JobStatus status =
      result.kind == WorkerResult::Kind::error ? JobStatus::failed : JobStatus::completed;
  std::string key = job;
  inner_->async_post_result(
      std::move(worker), std::move(job), std::move(result),
      then(StoreOp::post_result, std::move(done),
           [this, key = std::move(key), final_result, status](PostOutcome outcome) {
             posted(key, final_result, status, outcome);
           }));
}

void MeteredStore::async_post_stream(std::string worker, std::string job, std::string chunk_json,
                                     Completion<PostOutcome> done) {
  inner_->async_post_stream(std::move(worker), std::move(job), std::move(chunk_json),
                            then(StoreOp::post_stream, std::move(done)));
}

void MeteredStore::async_ping(std::string worker, std::vector<std::string> job_ids,
                              Completion<Done> done) {
  inner_->async_ping(std::move(worker), std::move(job_ids), then(StoreOp::ping, std::move(done)));
}

void MeteredStore::async_report_in_progress(std::string worker, bool holding,
                                            Completion<Done> done) {
  inner_->async_report_in_progress(std::move(worker), holding,
                                   then(StoreOp::report_in_progress, std::move(done)));
}

void MeteredStore::async_take_stop_requests(std::string worker,
                                            Completion<std::vector<std::string>> done) {
  inner_->async_take_stop_requests(std::move(worker),
                                   then(StoreOp::take_stop_requests, std::move(done)));
}

void MeteredStore::async_sweep(Completion<Done> done) {
  inner_->async_sweep(then(StoreOp::sweep, std::move(done), [this](Done) { swept(); }));
}

Subscription MeteredStore::watch(Topic topic, std::string_view key, std::function<void()> notify) {
  return inner_->watch(topic, key, std::move(notify));
}

void MeteredStore::wake_all() {
  inner_->wake_all();
}

void MeteredStore::collect(const HealthCounts& h) {
  queue_depth_.set(static_cast<double>(h.in_queue));
  jobs_[0]->set(static_cast<double>(h.in_queue));
  jobs_[1]->set(static_cast<double>(h.in_progress));
  jobs_[2]->set(static_cast<double>(h.completed));
  jobs_[3]->set(static_cast<double>(h.failed));
  workers_[0]->set(static_cast<double>(h.workers_idle));
  workers_[1]->set(static_cast<double>(h.workers_running));
  std::lock_guard lock(collect_mu_);
  // The store counts requeues itself; the counter follows it (never backwards: a restarted Redis
  // replica's count may start lower).
  if (h.retried > requeued_seen_) requeued_.inc(h.retried - requeued_seen_);
  requeued_seen_ = std::max(requeued_seen_, h.retried);
}

std::vector<std::string> MeteredStore::recent_jobs() const {
  std::lock_guard lock(recent_mu_);
  return {recent_.begin(), recent_.end()};
}

}  // namespace podworker::endpoint

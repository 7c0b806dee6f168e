#include "memory_store.h"

#include <algorithm>
#include <unordered_set>

#include "podworker/log.h"

namespace podworker::endpoint {

namespace {

std::int64_t millis_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count());
}

// Caps on per-worker stop bookkeeping; ids come from the worker's requests, so they are bounded.
constexpr std::size_t kMaxPendingStops = 1024;
constexpr std::size_t kMaxSentStops = 256;
// How often job-take's job_in_progress=1 (which names no job) may re-announce one stop; pings,
// which name the jobs held, re-announce for as long as the worker reports the job.
constexpr int kMaxTakeReannounce = 3;

}  // namespace

MemoryStore::MemoryStore(StoreOptions options, std::function<void(TerminalEvent)> on_terminal)
    : options_(options),
      clock_(options_.clock ? options_.clock : std::make_shared<const SteadyStoreClock>()),
      on_terminal_(std::move(on_terminal)) {}

MemoryStore::~MemoryStore() = default;

JobRecord MemoryStore::record(const Job& job) const {
  JobRecord r;
  r.id = job.spec.id;
  r.status = job.status;
  if (job.has_started) {
    r.delay_ms = millis_between(job.queued, job.started);
    if (is_terminal(job.status)) r.execution_ms = millis_between(job.started, job.finished);
  }
  if (job.has_error) r.error = job.error;
  r.output_json = job.status == JobStatus::in_progress ? job.progress_json : job.output_json;
  r.worker = job.worker;
  return r;
}

void MemoryStore::notify(Topic topic, std::string_view key) {
  if (topic == Topic::queue) return watches_.set_queued(queued_);
  watches_.fire(topic, key);
}

void MemoryStore::emit(Events& events) {
  for (TerminalEvent& e : events) {
    if (on_terminal_) on_terminal_(std::move(e));
  }
  events.clear();
}

std::shared_ptr<MemoryStore::Job> MemoryStore::find_job(std::string_view id) {
  auto it = jobs_.find(id);
  return it == jobs_.end() ? nullptr : it->second;
}

void MemoryStore::schedule(Job& job, Due due, time_point at) {
  unschedule(job, due);
  const auto i = static_cast<std::size_t>(due);
  job.due[i] = deadlines_.emplace(at, std::pair{&job, due});
  job.scheduled[i] = true;
}

void MemoryStore::unschedule(Job& job, Due due) {
  const auto i = static_cast<std::size_t>(due);
  if (!job.scheduled[i]) return;
  deadlines_.erase(job.due[i]);
  job.scheduled[i] = false;
}

void MemoryStore::unschedule_all(Job& job) {
  for (Due due : {Due::ttl, Due::run, Due::holder}) unschedule(job, due);
}

// An IN_PROGRESS job's holder: lost when silent for longer than the grace, or alive but pinging
// without listing the job for longer than that. Otherwise checked again when either could next hold.
void MemoryStore::check_holder(const std::shared_ptr<Job>& job, time_point at, Events& events) {
  const auto grace = options_.heartbeat_grace;
  const auto w = workers_.find(job->worker);
  if (w == workers_.end() || at - w->second.last_seen > grace) {
    requeue_lost(job, "stopped responding (heartbeat lost)", at, events);
    return;
  }
  const Worker& worker = w->second;
  if (worker.pinged && worker.last_ping > job->listed && at - job->listed > grace) {
    // Never listed nor posted for: the take's response never reached the worker (its replica died
    // before answering). That is no retry: the job goes back to the head of the queue as a
    // release() would have put it, a bounded number of times (a worker that never lists what it
    // runs must not keep a job forever).
    if (!job->acknowledged && job->unacknowledged_requeues < options_.retry_limit) {
      ++job->unacknowledged_requeues;
      log::warn("worker " + job->worker +
                    " never reported holding the job: its job-take response was lost; job back at the "
                    "head of the queue",
                job->spec.id);
      request_stop(job->worker, job->spec.id);
      new_run(*job);
      enqueue(job, true);
      notify(Topic::job, job->spec.id);
      return;
    }
    requeue_lost(job, "no longer reports holding the job", at, events);
    return;
  }
  time_point next = worker.last_seen + grace;
  // Listed long ago and no ping since: only a ping can make the listing rule apply; look again in a
  // while rather than at a time already past.
  next = std::min(next, job->listed + grace >= at ? job->listed + grace : at + grace / 4);
  schedule(*job, Due::holder, next);
}

// Every way out of IN_QUEUE (taken, ended, purged, expired) comes through here; idempotent.
void MemoryStore::leave_queue(Job& job) {
  if (job.status == JobStatus::in_queue && queued_ > 0) {
    --queued_;
    // Fewer jobs, fewer wake-ups to hand on when a woken poller leaves without one.
    watches_.set_queued(queued_);
  }
  queued_bytes_ -= job.queued_bytes;
  job.queued_bytes = 0;
}

// A job starts over (requeue, retry): the old run's output, progress and chunks are not the new
// run's. Stream cursors move past the old chunks.
void MemoryStore::new_run(Job& job) {
  unschedule(job, Due::run);
  unschedule(job, Due::holder);
  job.has_started = false;
  job.worker.clear();
  job.output_json.clear();
  job.error.clear();
  job.has_error = false;
  job.progress_json.clear();
  job.chunk_base += job.chunks.size();
  job.chunks.clear();
  job.delivered = job.chunk_base;
}

void MemoryStore::requeue_lost(const std::shared_ptr<Job>& job, const std::string& why, time_point at, Events& events) {
  if (job->requeues < options_.retry_limit) {
    ++job->requeues;
    ++retried_;
    log::warn("worker " + job->worker + " " + why + "; job requeued", job->spec.id);
    // A live holder must not go on with it (nor post for it: it no longer holds the lease). A lost
    // one is told by its next ping, should it come back.
    if (workers_.contains(job->worker)) request_stop(job->worker, job->spec.id);
    new_run(*job);
    enqueue(job, true);
    notify(Topic::job, job->spec.id);
    return;
  }
  log::warn("worker " + job->worker + " " + why + "; retry limit reached, job failed", job->spec.id);
  if (workers_.contains(job->worker)) request_stop(job->worker, job->spec.id);
  job->has_error = true;
  job->error =
      "worker " + job->worker + " " + why + " " + std::to_string(job->requeues + 1) + " times; retry limit reached";
  finish(*job, JobStatus::failed, at, events);
}

void MemoryStore::enqueue(const std::shared_ptr<Job>& job, bool front) {
  // Requeued jobs count toward the cap again (but are never refused: they were accepted once).
  queued_bytes_ -= job->queued_bytes;
  job->queued_bytes = queued_payload_bytes(job->spec);
  queued_bytes_ += job->queued_bytes;
  if (job->status != JobStatus::in_queue || job->queue_seq == 0) ++queued_;
  job->status = JobStatus::in_queue;
  job->queue_seq = ++next_seq_;
  auto& q = job->spec.policy.low_priority ? low_queue_ : queue_;
  if (front) {
    q.push_front({job, job->queue_seq});
  } else {
    q.push_back({job, job->queue_seq});
  }
  notify(Topic::queue, {});
}

void MemoryStore::finish(Job& job, JobStatus status, time_point now, Events& events) {
  leave_queue(job);
  job.status = status;
  job.finished = now;
  ++job.queue_seq;  // drops any queue entry
  unschedule(job, Due::holder);
  schedule(job, Due::run, now + (job.spec.sync ? options_.runsync_retention : options_.retention));
  if (!job.spec.webhook.empty()) events.push_back({job.spec.webhook, record(job)});
  notify(Topic::job, job.spec.id);
}

void MemoryStore::request_stop(const std::string& worker, const std::string& job_id) {
  if (worker.empty()) return;
  queue_stop(workers_[worker], worker, job_id);
}

void MemoryStore::queue_stop(Worker& worker, std::string_view worker_id, std::string_view job_id) {
  if (worker.stop.size() >= kMaxPendingStops) return;  // only a misbehaving worker gets here
  if (std::find(worker.stop.begin(), worker.stop.end(), job_id) != worker.stop.end()) return;
  worker.stop.emplace_back(job_id);
  notify(Topic::stop, worker_id);
}

// ---- client API

SubmitResult MemoryStore::submit(NewJob spec) {
  SubmitResult result;
  result.job_bytes = queued_payload_bytes(spec);
  auto job = std::make_shared<Job>();
  job->spec = std::move(spec);
  std::lock_guard lock(mu_);
  result.queued_bytes = queued_bytes_;
  const std::size_t cap = options_.max_queued_bytes;
  if (cap != 0 && (result.job_bytes > cap || queued_bytes_ > cap - result.job_bytes)) {
    result.accepted = false;
    return result;
  }
  job->submitted = job->queued = now();
  auto [it, inserted] = jobs_.try_emplace(job->spec.id, job);
  if (!inserted) throw std::logic_error("duplicate job id " + job->spec.id);
  schedule(*job, Due::ttl, job->submitted + job->spec.policy.ttl);
  enqueue(job, false);
  return result;
}

std::optional<JobRecord> MemoryStore::status(std::string_view id) {
  std::lock_guard lock(mu_);
  auto job = find_job(id);
  if (!job) return std::nullopt;
  return record(*job);
}

std::optional<StreamBatch> MemoryStore::stream(std::string_view id) {
  std::lock_guard lock(mu_);
  auto job = find_job(id);
  if (!job) return std::nullopt;
  StreamBatch batch{job->status, {}, 0};
  const std::size_t from = std::max(job->delivered, job->chunk_base) - job->chunk_base;
  batch.chunks.assign(job->chunks.begin() + static_cast<std::ptrdiff_t>(from), job->chunks.end());
  job->delivered = batch.next = job->chunk_base + job->chunks.size();
  return batch;
}

std::optional<StreamBatch> MemoryStore::read_stream(std::string_view id, std::size_t cursor) {
  std::lock_guard lock(mu_);
  auto job = find_job(id);
  if (!job) return std::nullopt;
  StreamBatch batch{job->status, {}, 0};
  const std::size_t end = job->chunk_base + job->chunks.size();
  const std::size_t from = std::min(std::max(cursor, job->chunk_base), end) - job->chunk_base;
  batch.chunks.assign(job->chunks.begin() + static_cast<std::ptrdiff_t>(from), job->chunks.end());
  batch.next = end;
  return batch;
}

std::optional<JobStatus> MemoryStore::cancel(std::string_view id) {
  Events events;
  std::optional<JobStatus> result;
  {
    std::lock_guard lock(mu_);
    auto job = find_job(id);
    if (!job) return std::nullopt;
    const auto at = now();
    if (job->status == JobStatus::in_queue) {
      finish(*job, JobStatus::cancelled, at, events);
    } else if (job->status == JobStatus::in_progress) {
      request_stop(job->worker, job->spec.id);
      finish(*job, JobStatus::cancelled, at, events);
    }
    result = job->status;
  }
  emit(events);
  return result;
}

RetryOutcome MemoryStore::retry(std::string_view id) {
  std::lock_guard lock(mu_);
  auto job = find_job(id);
  if (!job) return RetryOutcome::not_found;
  if (job->status != JobStatus::failed && job->status != JobStatus::timed_out) return RetryOutcome::not_retryable;
  new_run(*job);
  job->queued = now();
  enqueue(job, false);
  notify(Topic::job, job->spec.id);
  return RetryOutcome::requeued;
}

std::size_t MemoryStore::purge_queue() {
  std::lock_guard lock(mu_);
  std::size_t removed = 0;
  for (auto* q : {&queue_, &low_queue_}) {
    for (QueueEntry& e : *q) {
      if (e.job->status != JobStatus::in_queue || e.job->queue_seq != e.seq) continue;
      ++removed;
      leave_queue(*e.job);
      unschedule_all(*e.job);
      const std::string id = e.job->spec.id;
      jobs_.erase(id);
      notify(Topic::job, id);
    }
    q->clear();
  }
  return removed;
}

HealthCounts MemoryStore::health() {
  std::lock_guard lock(mu_);
  HealthCounts h;
  std::unordered_set<std::string_view> running;
  for (const auto& [id, job] : jobs_) {
    switch (job->status) {
      case JobStatus::in_queue: ++h.in_queue; break;
      case JobStatus::in_progress:
        ++h.in_progress;
        running.insert(job->worker);
        break;
      case JobStatus::completed: ++h.completed; break;
      case JobStatus::failed:
      case JobStatus::timed_out: ++h.failed; break;
      case JobStatus::cancelled: break;
    }
  }
  h.retried = retried_;
  const auto at = now();
  for (const auto& [name, w] : workers_) {
    const bool alive = at - w.last_seen <= options_.heartbeat_grace;
    if (!alive) continue;
    if (running.contains(name)) {
      ++h.workers_running;
    } else {
      ++h.workers_idle;
    }
  }
  return h;
}

// ---- worker API

void MemoryStore::worker_begin(std::string_view worker) {
  std::lock_guard lock(mu_);
  seen(worker);
}

MemoryStore::Worker& MemoryStore::seen(std::string_view worker) {
  auto it = workers_.find(worker);
  if (it == workers_.end()) it = workers_.try_emplace(std::string(worker)).first;
  it->second.last_seen = now();
  return it->second;
}

std::vector<TakenJob> MemoryStore::take(std::string_view worker, std::size_t max_jobs) {
  std::vector<TakenJob> out;
  std::lock_guard lock(mu_);
  const auto at = now();
  auto worker_it = workers_.find(worker);
  for (auto* q : {&queue_, &low_queue_}) {
    while (out.size() < max_jobs && !q->empty()) {
      QueueEntry e = std::move(q->front());
      q->pop_front();
      Job& job = *e.job;
      if (job.status != JobStatus::in_queue || job.queue_seq != e.seq) continue;  // cancelled or purged
      leave_queue(job);
      job.status = JobStatus::in_progress;
      job.started = job.listed = at;
      job.acknowledged = false;
      job.has_started = true;
      schedule(job, Due::run, at + job.spec.policy.execution_timeout);
      schedule(job, Due::holder, at + options_.heartbeat_grace);
      job.worker.assign(worker);
      ++job.queue_seq;
      ++job.lease;
      if (worker_it != workers_.end()) {
        // A job retried onto the worker that was told to stop it before: the old stop is void.
        Worker& w = worker_it->second;
        std::erase(w.stop, job.spec.id);
        std::erase_if(w.sent, [&](const SentStop& sent) { return sent.job_id == job.spec.id; });
      }

      // No job note: being taken is nothing a job watch waits for (store.h, Topic).
      out.push_back({job.spec.id, job.lease, job.spec.input_json, job.spec.s3_config_json,
                     job.spec.webhook, job.spec.policy, job.requeues});
    }
  }
  return out;
}

void MemoryStore::release(std::string_view worker, const std::vector<TakenJob>& taken) {
  std::lock_guard lock(mu_);
  for (const TakenJob& t : taken) {
    const auto job = find_job(t.id);
    if (!job || job->status != JobStatus::in_progress || job->worker != worker || job->lease != t.lease) continue;
    log::info(
        "job-take response to worker " + std::string(worker) + " not delivered; job back at the head of the queue",
        t.id);
    new_run(*job);
    enqueue(job, true);
    notify(Topic::job, job->spec.id);
  }
}

PostOutcome MemoryStore::holder_check(const Job& job, std::string_view worker, std::string_view what) const {
  // The worker that held the job when it ended may still be finishing it: its late posts are
  // ignored.
  if (is_terminal(job.status) && job.worker == worker) return PostOutcome::ignored;
  if (job.status == JobStatus::in_progress && job.worker == worker) return PostOutcome::accepted;
  // Anyone else, or a job still queued (its holder lost it to a requeue): never let it change the
  // job.
  log::warn("refused " + std::string(what) + " from worker " + std::string(worker) + ": the job is " +
                std::string(status_name(job.status)) +
                (job.worker.empty() ? std::string() : ", held by worker " + job.worker),
            job.spec.id);
  return PostOutcome::refused;
}

PostOutcome MemoryStore::post_result(std::string_view worker, std::string_view job_id, WorkerResult result) {
  Events events;
  {
    std::lock_guard lock(mu_);
    Worker& w = seen(worker);
    auto job = find_job(job_id);
    if (!job) return PostOutcome::not_found;
    const bool progress = result.kind == WorkerResult::Kind::progress;
    // A terminal state is final: late progress or a second result never overwrites it.
    if (const PostOutcome held = holder_check(*job, worker, progress ? "a progress update" : "a result");
        held != PostOutcome::accepted) {
      return held;
    }
    const auto at = now();
    if (progress) {
      job->progress_json = std::move(result.output_json);
      job->listed = at;  // it is working on the job
      job->acknowledged = true;
      notify(Topic::job, job->spec.id);
      return PostOutcome::accepted;
    }
    std::erase_if(w.sent, [&](const SentStop& sent) { return sent.job_id == job_id; });
    // A result that comes once the job's executionTimeout has run out ends it TIMED_OUT, as the
    // sweep would have: the worker, told the same deadline (job-take's policy), stops the job and
    // reports the timeout itself, often just before the sweep looks. Which of the two comes first
    // must not decide the state.
    if (at - job->started >= job->spec.policy.execution_timeout) {
      job->has_error = true;
      job->error = "job exceeded its execution timeout of " +
                   std::to_string(job->spec.policy.execution_timeout.count()) + " ms";
      finish(*job, JobStatus::timed_out, at, events);
    } else {
      job->output_json = std::move(result.output_json);
      job->progress_json.clear();
      if (result.kind == WorkerResult::Kind::error) {
        job->error = std::move(result.error);
        job->has_error = true;
        finish(*job, JobStatus::failed, at, events);
      } else {
        finish(*job, JobStatus::completed, at, events);
      }
    }
  }
  emit(events);
  return PostOutcome::accepted;
}

PostOutcome MemoryStore::post_stream(std::string_view worker, std::string_view job_id, std::string chunk_json) {
  std::lock_guard lock(mu_);
  seen(worker);
  auto job = find_job(job_id);
  if (!job) return PostOutcome::not_found;
  if (const PostOutcome held = holder_check(*job, worker, "a stream chunk"); held != PostOutcome::accepted) {
    return held;
  }
  job->listed = now();
  job->acknowledged = true;
  job->chunks.push_back(std::move(chunk_json));
  notify(Topic::job, job->spec.id);
  return PostOutcome::accepted;
}

void MemoryStore::ping(std::string_view worker, const std::vector<std::string>& job_ids) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(worker);
  if (it == workers_.end()) it = workers_.try_emplace(std::string(worker)).first;
  Worker& w = it->second;
  w.last_seen = w.last_ping = now();
  w.pinged = true;
  // A stop whose job the worker no longer lists has been acted on.
  std::erase_if(w.sent, [&](const SentStop& sent) {
    return std::find(job_ids.begin(), job_ids.end(), sent.job_id) == job_ids.end();
  });
  for (const std::string& id : job_ids) {
    const auto job = find_job(id);
    const bool assigned_here = job && job->status == JobStatus::in_progress && job->worker == worker;
    if (assigned_here) {
      job->listed = w.last_ping;
      job->acknowledged = true;
    } else {
      queue_stop(w, worker, id);
    }
  }
}

void MemoryStore::report_in_progress(std::string_view worker, bool holding) {
  std::lock_guard lock(mu_);
  Worker& w = seen(worker);
  if (!holding) {
    w.sent.clear();
    return;
  }
  for (SentStop& sent : w.sent) {
    if (sent.reannounced >= kMaxTakeReannounce) continue;
    const auto job = find_job(sent.job_id);
    if (job && job->status == JobStatus::in_progress && job->worker == worker) continue;
    ++sent.reannounced;
    queue_stop(w, worker, sent.job_id);
  }
}

std::vector<std::string> MemoryStore::take_stop_requests(std::string_view worker) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(worker);
  if (it == workers_.end()) return {};
  Worker& w = it->second;
  for (const std::string& id : w.stop) {
    const bool known = std::any_of(w.sent.begin(), w.sent.end(), [&](const SentStop& s) { return s.job_id == id; });
    if (known) continue;
    if (w.sent.size() >= kMaxSentStops) w.sent.pop_front();
    w.sent.push_back({id, 0});
  }
  return std::exchange(w.stop, {});
}

// ---- time

void MemoryStore::sweep() {
  Events events;
  {
    std::lock_guard lock(mu_);
    const auto at = now();
    const auto grace = options_.heartbeat_grace;

    // Lost workers are forgotten; their jobs go when their holder deadlines come due.
    std::erase_if(workers_, [&](const auto& entry) { return at - entry.second.last_seen > grace; });

    // Due deadlines only, earliest first. Handling one may add later ones (never one already due).
    while (!deadlines_.empty() && deadlines_.begin()->first < at) {
      const auto [job_ptr, due] = deadlines_.begin()->second;
      unschedule(*job_ptr, due);
      const std::shared_ptr<Job> job = find_job(job_ptr->spec.id);
      if (!job) continue;  // not reached: every erase drops the job's deadlines
      switch (due) {
        case Due::ttl:
          // TTL is hard: the job is gone in any state; a worker still running it is told to stop.
          if (job->status == JobStatus::in_progress) request_stop(job->worker, job->spec.id);
          leave_queue(*job);
          ++job->queue_seq;
          unschedule_all(*job);
          jobs_.erase(job->spec.id);
          notify(Topic::job, job->spec.id);
          break;
        case Due::run:
          if (job->status == JobStatus::in_progress) {
            request_stop(job->worker, job->spec.id);
            job->has_error = true;
            job->error = "job exceeded its execution timeout of " +
                         std::to_string(job->spec.policy.execution_timeout.count()) + " ms";
            finish(*job, JobStatus::timed_out, at, events);
          } else if (is_terminal(job->status)) {  // retention
            unschedule_all(*job);
            jobs_.erase(job->spec.id);
            notify(Topic::job, job->spec.id);
          }
          break;
        case Due::holder:
          if (job->status == JobStatus::in_progress) check_holder(job, at, events);
          break;
      }
    }

    // Drop dead entries at the queue fronts so cancelled jobs do not pile up.
    for (auto* q : {&queue_, &low_queue_}) {
      while (!q->empty() &&
             (q->front().job->status != JobStatus::in_queue || q->front().job->queue_seq != q->front().seq)) {
        q->pop_front();
      }
    }
  }
  emit(events);
}

// ---- change notification

Subscription MemoryStore::watch(Topic topic, std::string_view key, std::function<void()> notify_fn) {
  return watches_.watch(topic, key, std::move(notify_fn));
}

void MemoryStore::wake_all() {
  watches_.fire_all();
}

}  // namespace podworker::endpoint

#include "memory_store.h"

#include <algorithm>
#include <unordered_set>

#include "podworker/json.h"
#include "podworker/log.h"

namespace podworker::endpoint {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::int64_t millis_between(std::chrono::steady_clock::time_point from, std::chrono::steady_clock::time_point to) {
  return std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(to - from).count());
}

void write_string(Writer& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

void write_raw(Writer& w, std::string_view json_text) {
  w.RawValue(json_text.data(), json_text.size(), rapidjson::kObjectType);
}

// Caps on per-worker stop bookkeeping; ids come from the worker's requests, so they are bounded.
constexpr std::size_t kMaxPendingStops = 1024;
constexpr std::size_t kMaxSentStops = 256;
// How often job-take's job_in_progress=1 (which names no job) may re-announce one stop; pings,
// which name the jobs held, re-announce for as long as the worker reports the job.
constexpr int kMaxTakeReannounce = 3;

}  // namespace

MemoryStore::MemoryStore(StoreOptions options, std::function<void(TerminalEvent)> on_terminal)
    : options_(options), on_terminal_(std::move(on_terminal)) {}

MemoryStore::~MemoryStore() = default;

std::string MemoryStore::watch_key(Topic topic, std::string_view key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(static_cast<char>('0' + static_cast<int>(topic)));
  k.append(key);
  return k;
}

std::string MemoryStore::status_json(const Job& job) const {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  if (job.has_started) {
    w.Key("delayTime");
    w.Int64(millis_between(job.queued, job.started));
    if (is_terminal(job.status)) {
      w.Key("executionTime");
      w.Int64(millis_between(job.started, job.finished));
    }
  }
  if (job.has_error) {
    w.Key("error");
    write_string(w, job.error);
  }
  w.Key("id");
  write_string(w, job.spec.id);
  if (job.status == JobStatus::in_progress) {
    if (!job.progress_json.empty()) {
      w.Key("output");
      write_raw(w, job.progress_json);
    }
  } else if (!job.output_json.empty()) {
    w.Key("output");
    write_raw(w, job.output_json);
  }
  w.Key("status");
  write_string(w, status_name(job.status));
  if (!job.worker.empty()) {
    w.Key("workerId");
    write_string(w, job.worker);
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

void MemoryStore::notify(Topic topic, std::string_view key) {
  auto it = watches_.find(watch_key(topic, key));
  if (it == watches_.end()) return;
  for (const Watch& w : it->second) w.notify();
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

void MemoryStore::enqueue(const std::shared_ptr<Job>& job, bool front) {
  release_queued(*job);
  job->queued_bytes = queued_payload_bytes(job->spec);
  queued_bytes_ += job->queued_bytes;
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

// Every way out of IN_QUEUE (taken, ended, purged, expired) comes through here; idempotent.
void MemoryStore::release_queued(Job& job) {
  queued_bytes_ -= job.queued_bytes;
  job.queued_bytes = 0;
}

void MemoryStore::finish(Job& job, JobStatus status, Clock::time_point now, Events& events) {
  release_queued(job);
  job.status = status;
  job.finished = now;
  ++job.queue_seq;  // drops any queue entry
  if (!job.spec.webhook.empty()) events.push_back({job.spec.webhook, status_json(job), job.spec.id});
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
  job->submitted = job->queued = Clock::now();
  job->spec = std::move(spec);
  std::lock_guard lock(mu_);
  result.queued_bytes = queued_bytes_;
  const std::size_t cap = options_.max_queued_bytes;
  if (cap != 0 && (result.job_bytes > cap || queued_bytes_ > cap - result.job_bytes)) {
    result.accepted = false;
    return result;
  }
  auto [it, inserted] = jobs_.try_emplace(job->spec.id, job);
  if (!inserted) throw std::logic_error("duplicate job id " + job->spec.id);
  enqueue(job, false);
  return result;
}

std::optional<JobSnapshot> MemoryStore::status(std::string_view id) {
  std::lock_guard lock(mu_);
  auto job = find_job(id);
  if (!job) return std::nullopt;
  return JobSnapshot{job->status, status_json(*job)};
}

std::optional<StreamBatch> MemoryStore::stream(std::string_view id) {
  std::lock_guard lock(mu_);
  auto job = find_job(id);
  if (!job) return std::nullopt;
  StreamBatch batch{job->status, {}};
  if (job->delivered < job->chunks.size()) {
    batch.chunks.assign(std::make_move_iterator(job->chunks.begin() + static_cast<std::ptrdiff_t>(job->delivered)),
                        std::make_move_iterator(job->chunks.end()));
    // Delivered chunks are not needed again: keep the slots (so indices hold) but free the text.
    job->delivered = job->chunks.size();
  }
  return batch;
}

std::optional<JobStatus> MemoryStore::cancel(std::string_view id) {
  Events events;
  std::optional<JobStatus> result;
  {
    std::lock_guard lock(mu_);
    auto job = find_job(id);
    if (!job) return std::nullopt;
    const auto now = Clock::now();
    if (job->status == JobStatus::in_queue) {
      finish(*job, JobStatus::cancelled, now, events);
    } else if (job->status == JobStatus::in_progress) {
      request_stop(job->worker, job->spec.id);
      finish(*job, JobStatus::cancelled, now, events);
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
  job->has_started = false;
  job->worker.clear();
  job->output_json.clear();
  job->error.clear();
  job->has_error = false;
  job->progress_json.clear();
  job->chunks.clear();
  job->delivered = 0;
  job->queued = Clock::now();
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
      release_queued(*e.job);
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
  const auto now = Clock::now();
  for (const auto& [name, w] : workers_) {
    const bool alive = w.active_requests > 0 || now - w.last_seen <= options_.heartbeat_grace;
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
  auto it = workers_.find(worker);
  if (it == workers_.end()) it = workers_.try_emplace(std::string(worker)).first;
  ++it->second.active_requests;
  it->second.last_seen = Clock::now();
}

void MemoryStore::worker_end(std::string_view worker) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  it->second.active_requests = std::max(0, it->second.active_requests - 1);
  it->second.last_seen = Clock::now();
}

std::vector<std::string> MemoryStore::take(std::string_view worker, std::size_t max_jobs) {
  std::vector<std::string> out;
  std::lock_guard lock(mu_);
  const auto now = Clock::now();
  auto worker_it = workers_.find(worker);
  for (auto* q : {&queue_, &low_queue_}) {
    while (out.size() < max_jobs && !q->empty()) {
      QueueEntry e = std::move(q->front());
      q->pop_front();
      Job& job = *e.job;
      if (job.status != JobStatus::in_queue || job.queue_seq != e.seq) continue;  // cancelled or purged
      release_queued(job);
      job.status = JobStatus::in_progress;
      job.started = now;
      job.has_started = true;
      job.worker.assign(worker);
      ++job.queue_seq;
      if (worker_it != workers_.end()) {
        // A job retried onto the worker that was told to stop it before: the old stop is void.
        Worker& w = worker_it->second;
        std::erase(w.stop, job.spec.id);
        std::erase_if(w.sent, [&](const SentStop& sent) { return sent.job_id == job.spec.id; });
      }

      rapidjson::StringBuffer buffer;
      Writer w(buffer);
      w.StartObject();
      w.Key("id");
      write_string(w, job.spec.id);
      w.Key("input");
      write_raw(w, job.spec.input_json);
      if (!job.spec.s3_config_json.empty()) {
        w.Key("s3Config");
        write_raw(w, job.spec.s3_config_json);
      }
      if (!job.spec.webhook.empty()) {
        w.Key("webhook");
        write_string(w, job.spec.webhook);
      }
      w.EndObject();
      out.emplace_back(buffer.GetString(), buffer.GetSize());
      notify(Topic::job, job.spec.id);
    }
  }
  return out;
}

PostOutcome MemoryStore::post_result(std::string_view worker, std::string_view job_id, WorkerResult result) {
  Events events;
  {
    std::lock_guard lock(mu_);
    auto job = find_job(job_id);
    if (!job) return PostOutcome::not_found;
    // A terminal state is final: late progress or a second result never overwrites it.
    if (is_terminal(job->status)) return PostOutcome::ignored;
    const auto now = Clock::now();
    if (result.kind == WorkerResult::Kind::progress) {
      if (job->status != JobStatus::in_progress) return PostOutcome::ignored;
      job->progress_json = std::move(result.output_json);
      notify(Topic::job, job->spec.id);
      return PostOutcome::accepted;
    }
    // A result is accepted from any worker: one whose job was requeued after a heartbeat loss may
    // still finish it, and the work is then not done twice.
    if (job->status == JobStatus::in_progress && job->worker != worker) request_stop(job->worker, job->spec.id);
    if (auto w = workers_.find(worker); w != workers_.end()) {
      std::erase_if(w->second.sent, [&](const SentStop& sent) { return sent.job_id == job_id; });
    }
    if (!job->has_started) {
      job->has_started = true;
      job->started = now;
    }
    job->worker.assign(worker);
    job->output_json = std::move(result.output_json);
    job->progress_json.clear();
    if (result.kind == WorkerResult::Kind::error) {
      job->error = std::move(result.error);
      job->has_error = true;
      finish(*job, JobStatus::failed, now, events);
    } else {
      finish(*job, JobStatus::completed, now, events);
    }
  }
  emit(events);
  return PostOutcome::accepted;
}

PostOutcome MemoryStore::post_stream(std::string_view /*worker*/, std::string_view job_id, std::string chunk_json) {
  std::lock_guard lock(mu_);
  auto job = find_job(job_id);
  if (!job) return PostOutcome::not_found;
  if (is_terminal(job->status)) return PostOutcome::ignored;
  job->chunks.push_back(std::move(chunk_json));
  notify(Topic::job, job->spec.id);
  return PostOutcome::accepted;
}

void MemoryStore::ping(std::string_view worker, const std::vector<std::string>& job_ids) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(worker);
  if (it == workers_.end()) it = workers_.try_emplace(std::string(worker)).first;
  Worker& w = it->second;
  w.last_seen = Clock::now();
  // A stop whose job the worker no longer lists has been acted on.
  std::erase_if(w.sent, [&](const SentStop& sent) {
    return std::find(job_ids.begin(), job_ids.end(), sent.job_id) == job_ids.end();
  });
  for (const std::string& id : job_ids) {
    const auto job = find_job(id);
    const bool assigned_here = job && job->status == JobStatus::in_progress && job->worker == worker;
    if (!assigned_here) queue_stop(w, worker, id);
  }
}

void MemoryStore::report_in_progress(std::string_view worker, bool holding) {
  std::lock_guard lock(mu_);
  auto it = workers_.find(worker);
  if (it == workers_.end()) return;
  Worker& w = it->second;
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
    const auto now = Clock::now();

    std::unordered_set<std::string> lost;
    for (auto it = workers_.begin(); it != workers_.end();) {
      const Worker& w = it->second;
      if (w.active_requests == 0 && now - w.last_seen > options_.heartbeat_grace) {
        lost.insert(it->first);
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }

    for (auto it = jobs_.begin(); it != jobs_.end();) {
      const std::shared_ptr<Job> job = it->second;
      if (now - job->submitted > job->spec.policy.ttl) {
        // TTL is hard: the job is gone in any state; a worker still running it is told to stop.
        if (job->status == JobStatus::in_progress) request_stop(job->worker, job->spec.id);
        release_queued(*job);
        ++job->queue_seq;
        it = jobs_.erase(it);
        notify(Topic::job, job->spec.id);
        continue;
      }
      if (job->status == JobStatus::in_progress) {
        if (now - job->started > job->spec.policy.execution_timeout) {
          request_stop(job->worker, job->spec.id);
          job->has_error = true;
          job->error = "job exceeded its execution timeout of " +
                       std::to_string(job->spec.policy.execution_timeout.count()) + " ms";
          finish(*job, JobStatus::timed_out, now, events);
        } else if (lost.contains(job->worker)) {
          if (job->requeues < options_.retry_limit) {
            ++job->requeues;
            ++retried_;
            log::warn("worker " + job->worker + " lost its heartbeat; job requeued", job->spec.id);
            job->has_started = false;
            job->worker.clear();
            job->progress_json.clear();
            enqueue(job, true);
            notify(Topic::job, job->spec.id);
          } else {
            log::warn("worker " + job->worker + " lost its heartbeat; retry limit reached, job failed",
                      job->spec.id);
            job->has_error = true;
            job->error = "worker " + job->worker + " stopped responding (heartbeat lost) " +
                         std::to_string(job->requeues + 1) + " times; retry limit reached";
            finish(*job, JobStatus::failed, now, events);
          }
        }
      } else if (is_terminal(job->status)) {
        const auto keep = job->spec.sync ? options_.runsync_retention : options_.retention;
        if (now - job->finished > keep) {
          it = jobs_.erase(it);
          notify(Topic::job, job->spec.id);
          continue;
        }
      }
      ++it;
    }

    // Drop dead entries at the queue fronts so cancelled jobs do not pile up.
    for (auto* q : {&queue_, &low_queue_}) {
      while (!q->empty() && (q->front().job->status != JobStatus::in_queue || q->front().job->queue_seq != q->front().seq)) {
        q->pop_front();
      }
    }
  }
  emit(events);
}

// ---- change notification

Subscription MemoryStore::watch(Topic topic, std::string_view key, std::function<void()> notify_fn) {
  std::string k = watch_key(topic, key);
  std::lock_guard lock(mu_);
  const std::uint64_t token = ++next_token_;
  watches_[k].push_back({token, std::move(notify_fn)});
  return Subscription([this, k = std::move(k), token] {
    std::lock_guard relock(mu_);
    auto it = watches_.find(k);
    if (it == watches_.end()) return;
    auto& v = it->second;
    std::erase_if(v, [token](const Watch& w) { return w.token == token; });
    if (v.empty()) watches_.erase(it);
  });
}

void MemoryStore::wake_all() {
  std::lock_guard lock(mu_);
  for (const auto& [key, list] : watches_) {
    for (const Watch& w : list) w.notify();
  }
}

}  // namespace podworker::endpoint

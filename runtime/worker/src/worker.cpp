// The job loop: one thread takes jobs (long poll, batch take when several slots are free), a pool
// of threads runs them, a heartbeat thread pings, a stop-channel thread cancels. A taken job is
// handed straight to an idle pool thread (a slot of its own), and a whole batch is handed
// out under one lock, with the threads woken after it is released: a shared queue and condition
// variable made every woken thread wait for the lock the taker still held, several futex calls
// and task switches per job at thousands of short jobs per second. Each thread owns
// its own HttpClient, so every thread keeps its own keep-alive connection to the endpoint; a job
// thread's client carries its job's stream posts (from the job's sender thread) and result, and a
// second one, opened on first use, its progress.
#include <algorithm>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <thread>
#include <utility>

#include "deadline_watch.h"
#include "http_client.h"
#include "job_run.h"
#include "podworker/ids.h"
#include "podworker/log.h"
#include "podworker/thread_name.h"
#include "podworker/worker.h"
#include "worker_metrics.h"

namespace podworker {

using namespace std::chrono_literals;
using worker::HttpClient;
using worker::HttpResponse;
using worker::PostKind;

namespace {

// Full jitter: a uniformly random wait in [base/2, base], so workers that failed together do not
// retry together.
std::chrono::milliseconds jittered(std::chrono::milliseconds base) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  if (base.count() <= 1) return base;
  std::uniform_int_distribution<long long> dist(base.count() / 2, base.count());
  return std::chrono::milliseconds(dist(rng));
}

// Waits `d` unless `stop` is requested first; returns false when stopped.
bool wait_for(std::stop_token stop, std::chrono::milliseconds d) {
  if (d.count() <= 0) return !stop.stop_requested();
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  return !cv.wait_for(lock, stop, d, [] { return false; }) && !stop.stop_requested();
}

std::string describe(const HttpResponse& r) {
  if (r.status == 0) return r.error;
  std::string text = "HTTP " + std::to_string(r.status);
  if (!r.body.empty()) text += ": " + r.body.substr(0, 200);
  return text;
}

bool success(const HttpResponse& r) { return r.status >= 200 && r.status < 300; }

std::string replace_first(std::string s, std::string_view from, std::string_view to) {
  if (auto pos = s.find(from); pos != std::string::npos) s.replace(pos, from.size(), to);
  return s;
}

}  // namespace

struct Worker::Impl {
  Impl(WorkerOptions opts, Handler& h) : o(std::move(opts)), handler(h) {
    if (o.worker_id.empty()) o.worker_id = make_uuid();
    if (o.hostname.empty()) o.hostname = "unknown";
    take_url = substitute_url(o.take_url, o.worker_id, o.worker_id);
    if (take_url.find("/job-take/") != std::string::npos) {
      stop_url = replace_first(take_url, "/job-take/", "/job-stop/");
    }
    if (!o.ping_url.empty()) ping_url = substitute_url(o.ping_url, o.worker_id, o.worker_id);
    run_config.max_post_bytes = o.max_post_bytes;
    run_config.stream_buffer_bytes = o.stream_buffer_bytes;
    run_config.aggregate_stream = o.return_aggregate_stream;
    run_config.hostname = o.hostname;
    run_config.worker_id = o.worker_id;
    run_config.job_timeout = o.job_timeout;
    run_config.deadlines = &deadlines;
  }

  WorkerOptions o;
  Handler& handler;
  std::string take_url, stop_url, ping_url;
  worker::JobRunConfig run_config;
  // Outlives the pool below (members are destroyed in reverse order): no job runs without it.
  worker::DeadlineWatch deadlines;

  // A job handed to a pool thread.
  struct Assigned {
    std::string id;
    json::Document job;
    std::shared_ptr<worker::JobControl> control;
  };
  // One pool thread and its slot. A job (or the exit: released with none) is put in `next`
  // under `m` and signalled on `cv` after the worker's mu is released. Not std::binary_semaphore:
  // libstdc++'s spins with sched_yield() before it sleeps, which on a loaded machine costs a task
  // switch per yield (measured: more switches per job, a worse p99).
  struct PoolThread {
    std::mutex m;
    std::condition_variable cv;
    std::optional<Assigned> next;
    bool released = false;  // under m: next is set (or the thread is to exit)
    void release() {
      {
        std::lock_guard lock(m);
        released = true;
      }
      cv.notify_one();
    }
    // Waits for release(); then the job, or none to exit.
    std::optional<Assigned> acquire() {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return released; });
      released = false;
      return std::exchange(next, std::nullopt);
    }
    std::jthread thread;  // last: joined before the slot goes
  };

  mutable std::mutex mu;
  std::condition_variable slots_cv;  // a job ended, or stopping
  std::map<std::string, std::shared_ptr<worker::JobControl>> held;
  int concurrency = 1;  // --concurrency, else the handler's capacity()
  int active = 0;  // taken and not yet reported
  bool stopping = false;
  std::vector<std::unique_ptr<PoolThread>> pool;
  // Threads waiting for a job, the one that went idle last at the back (its stack and connection
  // are the warmest).
  std::vector<PoolThread*> idle;
  std::stop_source take_stop;  // interrupts the job-take long poll and its backoff waits

  std::string done_url(const std::string& job_id, bool is_stream) const {
    return append_query(substitute_url(o.done_url, o.worker_id, job_id),
                        is_stream ? "isStream=true" : "isStream=false");
  }

  // POSTs with retries on connection errors, 5xx and 429 (exponential backoff with jitter).
  HttpResponse post_with_retry(HttpClient& client, const std::string& url, const std::string& body,
                               const std::string& job_id, int attempts, std::stop_token stop, PostKind kind) {
    HttpResponse r;
    auto delay = o.backoff_initial;
    for (int attempt = 1;; ++attempt) {
      if (attempt > 1) worker::worker_metrics().retry(kind).inc();
      r = client.post(url, body, job_id, o.request_timeout, stop);
      if (success(r)) worker::worker_metrics().post(kind).inc();
      if (success(r) || r.interrupted || !r.retryable() || attempt >= attempts) return r;
      log::warn("post failed (" + describe(r) + "), attempt " + std::to_string(attempt) + " of " +
                    std::to_string(attempts),
                job_id);
      if (!wait_for(stop, jittered(delay))) return r;
      delay = std::min(delay * 2, o.backoff_max);
    }
  }

  // A pool thread's connections: `main` carries the job's stream posts (from its sender thread)
  // and its result; progress has a connection of its own, opened on first use, so a progress post
  // in flight never delays a stream chunk. Both stay alive across the thread's jobs.
  struct JobClients {
    HttpClient main;
    std::unique_ptr<HttpClient> progress;
  };

  class RemoteSink final : public worker::JobSink {
   public:
    RemoteSink(Impl& impl, JobClients& clients, std::string job_id, std::stop_token stop)
        : impl_(impl), client_(clients.main), clients_(clients), job_id_(std::move(job_id)),
          stop_(std::move(stop)) {
      stream_url_ = substitute_url(impl_.o.stream_url, impl_.o.worker_id, job_id_);
    }
    std::string post_stream(const std::string& body) override {
      const auto r = impl_.post_with_retry(client_, stream_url_, body, job_id_,
                                           impl_.o.post_attempts, stop_, PostKind::stream);
      return success(r) || r.interrupted ? std::string() : describe(r);
    }
    void post_progress(const std::string& body) override {
      if (!clients_.progress) {
        clients_.progress = std::make_unique<HttpClient>(impl_.o.api_key, impl_.o.connect_timeout);
      }
      const auto r = impl_.post_with_retry(*clients_.progress, impl_.done_url(job_id_, false), body, job_id_,
                                           std::min(impl_.o.post_attempts, 2), stop_, PostKind::progress);
      if (!success(r) && !r.interrupted) log::warn("progress update lost: " + describe(r), job_id_);
    }

   private:
    Impl& impl_;
    HttpClient& client_;
    JobClients& clients_;
    std::string job_id_;
    std::stop_token stop_;
    std::string stream_url_;
  };

  void execute(JobClients& clients, const std::string& id, const json::Document& job,
               worker::JobControl& control) {
    log::info("Started.", id);
    const auto started = std::chrono::steady_clock::now();
    worker::WorkerMetrics& metrics = worker::worker_metrics();
    HttpClient& client = clients.main;
    std::stop_token stop = control.token();
    RemoteSink sink(*this, clients, id, stop);
    const auto outcome = worker::run_job(handler, job, sink, control, run_config);
    if (outcome.stopped) {
      metrics.jobs_stopped.inc();
      log::info(
          "Stopped (" + std::string(stop_reason_name(control.reason())) + "); nothing posted.", id);
      return;
    }
    // A job stopped by its deadline still reports its failure: its own stop token, set by the
    // deadline, must not interrupt that post.
    if (outcome.timed_out) stop = {};
    const std::string url = done_url(id, outcome.is_stream);
    const auto r = post_with_retry(client, url, outcome.body, id, o.post_attempts, stop, PostKind::result);
    if (success(r)) {
      (outcome.ok ? metrics.jobs_completed : metrics.jobs_failed).inc();
      metrics.job_seconds.observe_since(started);
      log::info(outcome.ok ? "Finished." : "Finished with an error.", id);
      return;
    }
    if (r.interrupted) {  // cancelled while delivering: post nothing
      metrics.jobs_stopped.inc();
      return;
    }
    metrics.jobs_failed.inc();
    // Never let an undelivered result pass as success: the job must end FAILED, saying why.
    const std::string why = "result could not be delivered (" + describe(r) + ")";
    log::error(why, id);
    const auto fallback = post_with_retry(client, url, worker::error_result_body(why), id,
                                          o.post_attempts, stop, PostKind::error);
    if (!success(fallback)) {
      log::error("error report could not be delivered either (" + describe(fallback) +
                     "); the endpoint will requeue or fail the job",
                 id);
    }
  }

  void pool_loop(PoolThread& self) {
    JobClients clients{HttpClient(o.api_key, o.connect_timeout), nullptr};
    for (;;) {
      std::optional<Assigned> next = self.acquire();
      if (!next) return;
      Assigned& a = *next;
      try {
        execute(clients, a.id, a.job, *a.control);
      } catch (const std::exception& e) {
        // Only the runtime's own failures get here (handler exceptions are the job's error).
        log::error(std::string("job runner failed: ") + e.what(), a.id);
      }
      {
        std::lock_guard lock(mu);
        held.erase(a.id);
        --active;
        idle.push_back(&self);
      }
      worker::worker_metrics().jobs_running.add(-1);
      slots_cv.notify_all();
    }
  }

  // Holds mu. Records a job as held and gives it to an idle thread (a new one when none is);
  // returns the thread to wake once mu is released. Throws (nothing recorded) when no thread can
  // be had.
  PoolThread* dispatch(std::string id, json::Document job) {
    PoolThread* t = nullptr;
    if (idle.empty()) {
      pool.reserve(pool.size() + 1);  // no throw once the thread runs: its slot must stay
      auto slot = std::make_unique<PoolThread>();
      t = slot.get();
      slot->thread = std::jthread([this, t] {
        name_this_thread("pw-job");
        pool_loop(*t);
      });
      pool.push_back(std::move(slot));
    } else {
      t = idle.back();
      idle.pop_back();
    }
    auto control = std::make_shared<worker::JobControl>();
    held[id] = control;
    ++active;
    worker::worker_metrics().jobs_running.add(1);
    {
      std::lock_guard lock(t->m);
      t->next.emplace(Assigned{std::move(id), std::move(job), std::move(control)});
    }
    return t;
  }

  // Validates one taken job. A job with an id but no input, or one nested too deep (`too_deep`:
  // the reply's parse pruned part of it), is failed at once (nothing is lost silently); one
  // without an id cannot be answered and is only logged.
  // Appends an accepted job to `accepted` (start_accepted() starts them).
  void accept(HttpClient& client, const json::Value& job, bool too_deep,
              std::vector<std::pair<std::string, json::Document>>& accepted) {
    const json::Value* id = json::find(job, "id");
    if (id == nullptr || !id->IsString() || id->GetStringLength() == 0) {
      log::error("taken job has no string \"id\", dropped: " + json::to_string(job).substr(0, 200));
      return;
    }
    const std::string job_id(id->GetString(), id->GetStringLength());
    std::string rejected;
    if (too_deep) {
      rejected = "job input nests deeper than the limit of " + std::to_string(json::kMaxDepth) +
                 " levels of objects and arrays";
    } else if (json::find(job, "input") == nullptr) {
      rejected = "job has no \"input\"";
    }
    if (!rejected.empty()) {
      log::error("taken job rejected: " + rejected, job_id);
      post_with_retry(client, done_url(job_id, false), worker::error_result_body(rejected), job_id,
                      o.post_attempts, {}, PostKind::error);
      return;
    }
    accepted.emplace_back(job_id, json::copy(job));
  }

  // Hands the accepted jobs of one take to pool threads under one lock, then wakes them.
  void start_accepted(std::vector<std::pair<std::string, json::Document>>& accepted) {
    if (accepted.empty()) return;
    std::vector<PoolThread*> wake;
    wake.reserve(accepted.size());
    try {
      std::lock_guard lock(mu);
      for (auto& [id, job] : accepted) wake.push_back(dispatch(std::move(id), std::move(job)));
    } catch (const std::exception& e) {
      // The jobs not started are neither run nor listed in pings: the endpoint requeues them
      // after its heartbeat grace.
      log::error(std::string("could not start a taken job: ") + e.what());
    }
    accepted.clear();
    for (PoolThread* t : wake) t->release();
  }

  void take_loop() {
    HttpClient client(o.api_key, o.connect_timeout);
    const auto stop = take_stop.get_token();
    auto delay = o.backoff_initial;
    while (!stop.stop_requested()) {
      int free = 0;
      bool in_progress = false;
      for (;;) {
        // The handler's hook is user code: consult it without holding the lock.
        const int want = std::max(1, handler.concurrency(concurrency));
        std::unique_lock lock(mu);
        if (stopping) return;
        if (active < want) {
          free = want - active;
          in_progress = active > 0;
          break;
        }
        // Full: sleep until a job ends (or stop()); the slot is refilled the moment it frees.
        slots_cv.wait(lock);
      }
      std::string url = take_url;
      if (free > 1) {
        url = replace_first(url, "/job-take/", "/job-take-batch/");
        url = append_query(url, "batch_size=" + std::to_string(free));
      }
      url = append_query(url, in_progress ? "job_in_progress=1" : "job_in_progress=0");
      const auto started = std::chrono::steady_clock::now();
      const auto r = client.get(url, o.long_poll_timeout, stop);
      if (r.interrupted) return;
      if (r.status == 200 && !r.body.empty()) {
        delay = o.backoff_initial;
        worker::worker_metrics().take_seconds.observe_since(started);
        std::vector<std::pair<std::string, json::Document>> accepted;
        try {
          // Pruned, not refused, when too deep: RunPod relays inputs of any depth, and a job that
          // cannot be run must still be answered (by id), while the rest of a batch runs. The
          // limit leaves room for the reply's array and job object around each input.
          const auto reply = json::parse_pruned(r.body, json::kNoSizeLimit, json::kMaxDepth + 2);
          const auto& doc = reply.doc;
          const auto pruned = [&](std::size_t i) {
            return std::binary_search(reply.pruned.begin(), reply.pruned.end(), i);
          };
          if (doc.IsArray()) {
            for (rapidjson::SizeType i = 0; i < doc.Size(); ++i)
              accept(client, doc[i], pruned(i), accepted);
          } else if (doc.IsObject()) {
            accept(client, doc, !reply.pruned.empty(), accepted);
          } else {
            log::error("job-take answered neither an object nor an array");
          }
        } catch (const JsonError& e) {
          log::error(std::string("job-take answered malformed JSON: ") + e.what());
        }
        // The jobs accepted before anything went wrong run.
        start_accepted(accepted);
        continue;
      }
      if (r.status == 204 || r.status == 400 || r.status == 200) {
        delay = o.backoff_initial;
        const auto elapsed = std::chrono::steady_clock::now() - started;
        wait_for(stop, std::chrono::duration_cast<std::chrono::milliseconds>(o.min_poll_interval - elapsed));
        continue;
      }
      if (r.timed_out) continue;  // the server held the poll longer than we wait: ask again
      if (r.status == 429) {
        log::warn("job-take rate limited (429); backing off");
        wait_for(stop, jittered(o.rate_limited_backoff));
        continue;
      }
      log::error("job-take failed (" + describe(r) + "); retrying");
      wait_for(stop, jittered(delay));
      delay = std::min(delay * 2, o.backoff_max);
    }
  }

  void stop_channel_loop(std::stop_token stop) {
    HttpClient client(o.api_key, o.connect_timeout);
    auto delay = o.backoff_initial;
    while (!stop.stop_requested()) {
      const auto started = std::chrono::steady_clock::now();
      const auto r = client.get(stop_url, o.long_poll_timeout, stop);
      if (r.interrupted) return;
      if (r.status == 200 && !r.body.empty()) {
        delay = o.backoff_initial;
        worker::worker_metrics().take_seconds.observe_since(started);
        try {
          const auto doc = json::parse_object(r.body, 1 << 20);
          const json::Value* ids = json::find(doc, "jobsToStop");
          if (ids != nullptr && ids->IsArray()) {
            std::lock_guard lock(mu);
            for (const auto& id : ids->GetArray()) {
              if (!id.IsString()) continue;
              auto it = held.find(std::string(id.GetString(), id.GetStringLength()));
              if (it == held.end()) continue;
              log::info("Stop requested by the endpoint.", it->first);
              it->second->stop(StopReason::cancelled);
            }
          }
        } catch (const JsonError& e) {
          log::warn(std::string("job-stop answered malformed JSON: ") + e.what());
        }
        continue;
      }
      if (r.status == 204 || r.status == 200) {
        delay = o.backoff_initial;
        const auto elapsed = std::chrono::steady_clock::now() - started;
        wait_for(stop, std::chrono::duration_cast<std::chrono::milliseconds>(o.min_poll_interval - elapsed));
        continue;
      }
      if (r.timed_out) continue;
      log::debug("job-stop failed (" + describe(r) + "); retrying");
      wait_for(stop, jittered(r.status == 429 ? o.rate_limited_backoff : delay));
      delay = std::min(delay * 2, o.backoff_max);
    }
  }

  void heartbeat_loop(std::stop_token stop) {
    HttpClient client(o.api_key, o.connect_timeout);
    const std::string version = std::string("runpod_version=") + kRunpodProtocolVersion;
    do {
      std::string ids;
      {
        std::lock_guard lock(mu);
        for (const auto& [id, _] : held) {
          if (!ids.empty()) ids += ',';
          ids += worker::url_escape(id);
        }
      }
      std::string url = ping_url;
      if (!ids.empty()) url = append_query(url, "job_id=" + ids);
      url = append_query(url, version);
      const auto r = client.get(url, o.request_timeout, stop);
      if (r.interrupted) return;
      if (!success(r)) {
        worker::worker_metrics().heartbeat_failures.inc();
        log::debug("heartbeat failed (" + describe(r) + ")");
      }
    } while (wait_for(stop, o.ping_interval));
  }
};

Worker::Worker(WorkerOptions options, Handler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

Worker::~Worker() {
  stop();
}

const std::string& Worker::worker_id() const { return impl_->o.worker_id; }

std::vector<std::string> Worker::held_jobs() const {
  std::lock_guard lock(impl_->mu);
  std::vector<std::string> ids;
  for (const auto& [id, _] : impl_->held) ids.push_back(id);
  return ids;
}

void Worker::stop() {
  {
    std::lock_guard lock(impl_->mu);
    impl_->stopping = true;
  }
  impl_->slots_cv.notify_all();
  impl_->take_stop.request_stop();
}

void Worker::run() {
  Impl& s = *impl_;
  if (s.take_url.empty()) throw std::invalid_argument("no job-take URL (RUNPOD_WEBHOOK_GET_JOB)");
  if (s.o.done_url.empty()) throw std::invalid_argument("no job-done URL (RUNPOD_WEBHOOK_POST_OUTPUT)");
  if (s.o.stream_url.empty() && s.handler.streams()) {
    throw std::invalid_argument("handler streams but there is no job-stream URL (RUNPOD_WEBHOOK_POST_STREAM)");
  }
  if (!s.o.handler_initialized) s.handler.init(make_handler_context(s.o, s.handler));
  // Unset, the concurrency is what the handler holds at once (a batching engine's slots).
  s.concurrency = s.o.concurrency ? *s.o.concurrency : std::max(1, s.handler.capacity());
  worker::worker_metrics().concurrency.set(s.concurrency);
  log::info("worker " + s.o.worker_id + " taking jobs (concurrency " +
            std::to_string(s.concurrency) + (s.o.concurrency ? ")" : ", the handler's capacity)"));
  std::jthread heartbeat, stop_channel;
  if (!s.ping_url.empty()) {
    heartbeat = std::jthread([&s](std::stop_token st) {
      name_this_thread("pw-heartbeat");
      s.heartbeat_loop(st);
    });
  }
  if (!s.stop_url.empty()) {
    stop_channel = std::jthread([&s](std::stop_token st) {
      name_this_thread("pw-stop-chan");
      s.stop_channel_loop(st);
    });
  }

  s.take_loop();

  // Draining: jobs already taken finish and report within the grace period; the stop channel and
  // heartbeat keep running meanwhile so cancels still arrive and the endpoint sees us alive.
  {
    std::unique_lock lock(s.mu);
    if (s.active > 0) log::info("stopping: waiting for " + std::to_string(s.active) + " job(s)");
    if (!s.slots_cv.wait_for(lock, s.o.shutdown_grace, [&] { return s.active == 0; })) {
      log::warn("shutdown grace period over: cancelling " + std::to_string(s.active) +
                " job(s); the endpoint will requeue them");
      for (auto& [id, control] : s.held) control->stop(StopReason::shutdown);
      s.slots_cv.wait(lock, [&] { return s.active == 0; });
    }
  }
  // Every thread is idle now (active is 0): released with no job, each returns.
  for (auto& t : s.pool) t->release();
  for (auto& t : s.pool) t->thread.join();
  s.idle.clear();
  s.pool.clear();
  heartbeat = {};
  stop_channel = {};
  s.handler.finalize();
  log::info("worker stopped");
}

}  // namespace podworker

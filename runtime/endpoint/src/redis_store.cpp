#include "redis_store.h"

#include <poll.h>
#include <unistd.h>

#include <charconv>
#include <condition_variable>
#include <random>
#include <span>

#include "podworker/log.h"
#include "podworker/thread_name.h"

namespace podworker::endpoint {

namespace {

using Script = redis_script::Id;

constexpr std::chrono::milliseconds kIoTimeout{5'000};
constexpr std::chrono::milliseconds kReconnectPause{500};

std::string_view text(const redisReply* r) {
  return r == nullptr ? std::string_view{} : reply_text(*r);
}

const redisReply* element(const redisReply& r, std::size_t i) {
  return r.type == REDIS_REPLY_ARRAY && i < r.elements ? r.element[i] : nullptr;
}

std::int64_t to_int(std::string_view s) {
  std::int64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

std::int64_t integer(const redisReply* r) {
  if (r == nullptr) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  return to_int(text(r));
}

std::string random_origin() {
  std::random_device rd;
  const std::uint64_t v = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::optional<JobStatus> parse_status(std::string_view s) {
  for (JobStatus st : {JobStatus::in_queue, JobStatus::in_progress, JobStatus::completed,
                       JobStatus::failed, JobStatus::cancelled, JobStatus::timed_out}) {
    if (status_name(st) == s) return st;
  }
  return std::nullopt;
}

// The fields job_record() reads: a status read asks for these alone (HMGET), not the whole hash
// with the job's input.
constexpr std::array<std::string_view, 11> kRecordFields{"id", "st",  "hs",   "sta", "qd", "fin",
                                                         "he", "err", "prog", "out", "w"};
// The same and the record's expiry: the records a script's `ended` holds (finish() in
// redis_scripts.cpp asks for them in this order).
constexpr std::array<std::string_view, 12> kEndedFields{"id", "st",  "hs",   "sta", "qd", "fin",
                                                        "he", "err", "prog", "out", "w",  "exp"};

// A job hash's fields; views into the reply. A flat list searched in order: a job hash has a few
// dozen fields, too few for a tree to pay for its allocations.
class JobFields {
 public:
  // HGETALL's [field, value, field, value, ...].
  explicit JobFields(const redisReply& flat) {
    fields_.reserve(flat.elements / 2);
    for (std::size_t i = 0; i + 1 < flat.elements; i += 2)
      fields_.emplace_back(text(flat.element[i]), text(flat.element[i + 1]));
  }
  // HMGET's values, in the order of `names` (nil for a field the hash lacks).
  JobFields(std::span<const std::string_view> names, const redisReply& values) {
    fields_.reserve(names.size());
    for (std::size_t i = 0; i < names.size() && i < values.elements; ++i) {
      if (values.element[i]->type != REDIS_REPLY_NIL)
        fields_.emplace_back(names[i], text(values.element[i]));
    }
  }
  bool empty() const { return fields_.empty(); }
  std::string_view operator[](std::string_view name) const {
    for (const auto& [field, value] : fields_) {
      if (field == name) return value;
    }
    return {};
  }
  std::int64_t number(std::string_view name) const { return to_int((*this)[name]); }

 private:
  std::vector<std::pair<std::string_view, std::string_view>> fields_;
};

// The record of a job hash, as MemoryStore::record() reports one.
JobRecord job_record(const JobFields& job) {
  JobRecord r;
  r.id = std::string(job["id"]);
  r.status = parse_status(job["st"]).value_or(JobStatus::in_queue);
  if (job["hs"] == "1") {
    r.delay_ms = std::max<std::int64_t>(0, job.number("sta") - job.number("qd"));
    if (is_terminal(r.status))
      r.execution_ms = std::max<std::int64_t>(0, job.number("fin") - job.number("sta"));
  }
  if (job["he"] == "1") r.error = std::string(job["err"]);
  r.output_json = std::string(r.status == JobStatus::in_progress ? job["prog"] : job["out"]);
  r.worker = std::string(job["w"]);
  return r;
}

std::optional<StreamBatch> stream_batch(const redisReply* result) {
  if (result == nullptr || result->type != REDIS_REPLY_ARRAY) return std::nullopt;
  StreamBatch batch{parse_status(text(element(*result, 0))).value_or(JobStatus::in_queue),
                    {},
                    static_cast<std::size_t>(integer(element(*result, 1)))};
  if (const redisReply* chunks = element(*result, 2); chunks != nullptr) {
    for (std::size_t i = 0; i < chunks->elements; ++i)
      batch.chunks.emplace_back(text(chunks->element[i]));
  }
  return batch;
}

}  // namespace

RedisStore::RedisStore(const RedisAddress& address, std::string endpoint_id, StoreOptions options,
                       std::function<void(TerminalEvent)> on_terminal)
    : address_(address),
      endpoint_id_(std::move(endpoint_id)),
      prefix_("pw:{" + endpoint_id_ + "}:"),
      origin_(random_origin()),
      options_(std::move(options)),
      clock_(options_.clock ? options_.clock : std::make_shared<const SteadyStoreClock>()),
      // Deadlines are compared by every replica, so they are wall-clock milliseconds; the store's
      // clock (steady, or a test's fake one) supplies the progress of time from here on.
      wall_offset_ms_(
          std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count() -
          std::chrono::duration_cast<std::chrono::milliseconds>(clock_->now().time_since_epoch())
              .count()),
      on_terminal_(std::move(on_terminal)) {
  {
    RedisConnection c(address_, kIoTimeout);
    const RedisReply r = c.command({"FUNCTION", "LOAD", "REPLACE", redis_script::library()});
    if (r->type == REDIS_REPLY_ERROR) {
      throw RedisError("redis " + address_.url() +
                       ": loading the functions failed: " + std::string(reply_text(*r)));
    }
  }
  // Subscribed before the constructor returns: a watch() registered right after must not miss a
  // change.
  auto subscriber = std::make_unique<RedisConnection>(address_, kIoTimeout);
  const RedisReply confirm = subscriber->command({"SUBSCRIBE", prefix_ + "ev"});
  if (confirm->type == REDIS_REPLY_ERROR) {
    throw RedisError("redis " + address_.url() +
                     ": SUBSCRIBE failed: " + std::string(reply_text(*confirm)));
  }
  announce_listening();
  pipeline_ = std::make_unique<RedisPipeline>(address_, kIoTimeout);
  subscriber_ = std::jthread([this, c = std::move(subscriber)](std::stop_token stop) mutable {
    name_this_thread("pw-redis-sub");
    subscriber_loop(std::move(stop), std::move(c));
  });
}

RedisStore::~RedisStore() {
  subscriber_.request_stop();
  wake_.signal();
  close();
}

void RedisStore::close() {
  if (pipeline_) pipeline_->close();
}

std::int64_t RedisStore::now_ms() const {
  return wall_offset_ms_ +
         std::chrono::duration_cast<std::chrono::milliseconds>(clock_->now().time_since_epoch())
             .count();
}

// ---- scripts

std::vector<std::string> RedisStore::script_argv(Script script,
                                                 std::vector<std::string> args) const {
  std::vector<std::string> argv;
  argv.reserve(3 + redis_script::kCommonArgs + args.size());
  argv.emplace_back("FCALL");
  argv.emplace_back(redis_script::function_name(script));
  argv.emplace_back("0");
  argv.push_back(prefix_);
  argv.push_back(origin_);
  argv.push_back(std::to_string(now_ms()));
  argv.push_back(std::to_string(options_.retention.count()));
  argv.push_back(std::to_string(options_.runsync_retention.count()));
  argv.push_back(std::to_string(options_.heartbeat_grace.count()));
  argv.push_back(std::to_string(options_.retry_limit));
  for (std::string& a : args) argv.push_back(std::move(a));
  return argv;
}

void RedisStore::announce_listening() const {
  const std::vector<std::string> argv = script_argv(Script::listeners, {});
  const std::vector<std::string_view> views(argv.begin(), argv.end());
  RedisConnection c(address_, kIoTimeout);
  RedisReply r = c.command(views);
  // A Redis restarted without persistence has forgotten the library (as in run()).
  if (r->type == REDIS_REPLY_ERROR && reply_text(*r).starts_with("ERR Function not found")) {
    c.command({"FUNCTION", "LOAD", "REPLACE", redis_script::library()});
    r = c.command(views);
  }
  if (r->type == REDIS_REPLY_ERROR) {
    throw RedisError("redis " + address_.url() +
                     ": announcing the change channel failed: " + std::string(reply_text(*r)));
  }
}

void RedisStore::run(Script script, std::vector<std::string> args, ScriptDone done) {
  auto shared = std::make_shared<std::vector<std::string>>(script_argv(script, std::move(args)));
  auto finish = [this, done](RedisReply r, std::exception_ptr error) {
    if (error) return done(std::move(error), nullptr);
    if (r->type == REDIS_REPLY_ERROR) {
      return done(std::make_exception_ptr(
                      RedisError("redis script failed: " + std::string(reply_text(*r)))),
                  nullptr);
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 5) {
      return done(std::make_exception_ptr(RedisError("redis script: unexpected reply")), nullptr);
    }
    apply(*r);
    done(nullptr, r.get());
  };
  std::shared_ptr<const std::vector<std::string>> sent = std::move(shared);
  pipeline_->send(sent, [this, sent, finish](RedisReply r, std::exception_ptr error) {
    // A Redis restarted without persistence (or after FUNCTION FLUSH) has forgotten the library:
    // load it again and call once more. The pipeline keeps the order: the load runs first.
    if (!error && r->type == REDIS_REPLY_ERROR &&
        reply_text(*r).starts_with("ERR Function not found")) {
      pipeline_->send({"FUNCTION", "LOAD", "REPLACE", std::string(redis_script::library())},
                      [](RedisReply, std::exception_ptr) {});
      pipeline_->send(sent, finish);
      return;
    }
    finish(std::move(r), std::move(error));
  });
}

template <class T, class Parse>
void RedisStore::run_parsed(Script script, std::vector<std::string> args, Completion<T> done,
                            Parse parse) {
  run(script, std::move(args),
      [done = std::move(done), parse = std::move(parse)](std::exception_ptr error,
                                                         const redisReply* r) {
        T value{};
        if (!error) {
          try {
            value = parse(element(*r, 0));
          } catch (...) {
            error = std::current_exception();
          }
        }
        done(std::move(error), std::move(value));
      });
}

template <class T, class Start>
T RedisStore::wait(Start start) {
  // Not std::promise: its set_exception() keeps a copy of the exception_ptr until it returns,
  // after the waiter is already released, so the completing thread could drop the exception's last
  // reference after the waiter had read it. The reference count lives in the uninstrumented C++
  // runtime, so ThreadSanitizer saw a read on one thread and a free on another with nothing
  // ordering them. Here the completion moves its value and exception into the slot under the
  // mutex and keeps nothing: the waiting thread alone owns them once it wakes.
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::optional<T> value;
    std::exception_ptr error;
  } slot;
  start([&slot](std::exception_ptr error, T value) {
    std::lock_guard lock(slot.mu);
    slot.error = std::move(error);
    if (!slot.error) slot.value.emplace(std::move(value));
    slot.done = true;
    // Notified under the lock: the waiter cannot return (and destroy the slot) before this ends.
    slot.cv.notify_one();
  });
  std::unique_lock lock(slot.mu);
  slot.cv.wait(lock, [&] { return slot.done; });
  if (slot.error) std::rethrow_exception(std::move(slot.error));
  return std::move(*slot.value);
}

void RedisStore::apply(const redisReply& reply) {
  if (const redisReply* logs = element(reply, 3); logs != nullptr) {
    for (std::size_t i = 0; i + 1 < logs->elements; i += 2)
      log::warn(text(logs->element[i + 1]), text(logs->element[i]));
  }
  // Before the notes: the job note wakes the waiter whose read the record answers.
  if (const redisReply* ended = element(reply, 4); ended != nullptr) {
    for (std::size_t i = 0; i < ended->elements; ++i) remember_ended(*ended->element[i]);
  }
  if (const redisReply* notes = element(reply, 1); notes != nullptr) {
    for (std::size_t i = 0; i < notes->elements; ++i) apply_note(text(notes->element[i]));
  }
  if (const redisReply* events = element(reply, 2); events != nullptr && on_terminal_) {
    for (std::size_t i = 0; i < events->elements; ++i) {
      const JobFields job(*events->element[i]);
      if (job.empty()) continue;
      on_terminal_({std::string(job["webhook"]), job_record(job)});
    }
  }
}

void RedisStore::remember_ended(const redisReply& fields) {
  if (fields.type != REDIS_REPLY_ARRAY) return;
  const JobFields job(kEndedFields, fields);
  const std::string id(job["id"]);
  // Kept only for a waiter here: most ended jobs are never read again on this replica.
  if (id.empty() || !parse_status(job["st"]) || !watches_.watched(Topic::job, id)) return;
  std::lock_guard lock(ended_mu_);
  // An id taken meanwhile stays in the order until it comes to the front: cheaper than finding it
  // at every read, and at worst a later entry of the same id goes early (a read from Redis).
  if (!ended_.contains(id)) {
    ended_order_.push_back(id);
    if (ended_order_.size() > kMaxEnded) {
      ended_.erase(ended_order_.front());
      ended_order_.pop_front();
    }
  }
  ended_[id] = {job_record(job), job.number("exp")};
}

std::optional<JobRecord> RedisStore::take_ended(const std::string& id) {
  std::lock_guard lock(ended_mu_);
  const auto it = ended_.find(id);
  if (it == ended_.end()) return std::nullopt;
  Ended e = std::move(it->second);
  ended_.erase(it);
  // Past its expiry the sweep removes the job, maybe already: Redis says which.
  if (now_ms() >= e.expires_ms) return std::nullopt;
  return std::move(e.record);
}

// "j<job id>", "s<worker id>", "q<version>:<queue length>".
void RedisStore::apply_note(std::string_view n) {
  if (n.empty()) return;
  if (n[0] == 'j') {
    fire(Topic::job, n.substr(1));
  } else if (n[0] == 's') {
    fire(Topic::stop, n.substr(1));
  } else if (n[0] == 'q') {
    const auto colon = n.find(':');
    if (colon == std::string_view::npos) return;
    queue_changed(static_cast<std::uint64_t>(to_int(n.substr(1, colon - 1))),
                  static_cast<std::size_t>(to_int(n.substr(colon + 1))));
  }
}

// ---- the async operations

void RedisStore::async_submit(NewJob job, Completion<SubmitResult> done) {
  const std::size_t bytes = queued_payload_bytes(job);
  std::string id = job.id;
  run_parsed<SubmitResult>(
      Script::submit,
      {std::move(job.id), std::move(job.input_json), std::move(job.webhook),
       std::move(job.s3_config_json), std::to_string(job.policy.execution_timeout.count()),
       std::to_string(job.policy.ttl.count()), job.policy.low_priority ? "1" : "0",
       job.sync ? "1" : "0", std::to_string(bytes), std::to_string(options_.max_queued_bytes)},
      std::move(done), [bytes, id = std::move(id)](const redisReply* r) {
        SubmitResult result;
        result.job_bytes = bytes;
        const std::string_view answer = text(r);
        if (answer == "duplicate") throw std::logic_error("duplicate job id " + id);
        // "full HELD": the queued jobs of all replicas together would pass the cap.
        if (answer.starts_with("full ")) {
          result.accepted = false;
          result.queued_bytes = static_cast<std::size_t>(to_int(answer.substr(5)));
        }
        return result;
      });
}

void RedisStore::async_status(std::string id, Completion<std::optional<JobRecord>> done) {
  if (auto record = take_ended(id)) return done(nullptr, std::move(record));
  // One HMGET, no script: nothing changes.
  std::vector<std::string> args;
  args.reserve(2 + kRecordFields.size());
  args.emplace_back("HMGET");
  args.push_back(prefix_ + "job:" + id);
  for (std::string_view f : kRecordFields) args.emplace_back(f);
  pipeline_->send(std::move(args),
                  [done = std::move(done)](RedisReply r, std::exception_ptr error) {
                    std::optional<JobRecord> record;
                    if (!error && r->type == REDIS_REPLY_ARRAY && r->elements != 0) {
                      const JobFields job(kRecordFields, *r);
                      // Not a whole job hash: treat as gone.
                      if (parse_status(job["st"])) record = job_record(job);
                    }
                    done(std::move(error), std::move(record));
                  });
}

void RedisStore::async_stream(std::string id, Completion<std::optional<StreamBatch>> done) {
  run_parsed<std::optional<StreamBatch>>(Script::stream, {std::move(id)}, std::move(done),
                                         stream_batch);
}

void RedisStore::async_read_stream(std::string id, std::size_t cursor,
                                   Completion<std::optional<StreamBatch>> done) {
  run_parsed<std::optional<StreamBatch>>(
      Script::read_stream, {std::move(id), std::to_string(cursor)}, std::move(done), stream_batch);
}

void RedisStore::async_cancel(std::string id, Completion<std::optional<JobStatus>> done) {
  run_parsed<std::optional<JobStatus>>(Script::cancel, {std::move(id)}, std::move(done),
                                       [](const redisReply* r) { return parse_status(text(r)); });
}

void RedisStore::async_retry(std::string id, Completion<RetryOutcome> done) {
  run_parsed<RetryOutcome>(Script::retry, {std::move(id)}, std::move(done),
                           [](const redisReply* r) {
                             const std::string_view result = text(r);
                             if (result == "requeued") return RetryOutcome::requeued;
                             if (result == "not_retryable") return RetryOutcome::not_retryable;
                             return RetryOutcome::not_found;
                           });
}

void RedisStore::async_purge_queue(Completion<std::size_t> done) {
  run_parsed<std::size_t>(Script::purge, {}, std::move(done),
                          [](const redisReply* r) { return static_cast<std::size_t>(integer(r)); });
}

void RedisStore::async_health(Completion<HealthCounts> done) {
  run_parsed<HealthCounts>(Script::health, {}, std::move(done), [](const redisReply* h) {
    HealthCounts out;
    if (h == nullptr) return out;
    auto at = [&](std::size_t i) { return static_cast<std::size_t>(integer(element(*h, i))); };
    out.completed = at(0);
    out.failed = at(1);
    out.in_progress = at(2);
    out.in_queue = at(3);
    out.retried = at(4);
    out.workers_idle = at(5);
    out.workers_running = at(6);
    return out;
  });
}

void RedisStore::async_worker_begin(std::string worker, Completion<Done> done) {
  run_parsed<Done>(Script::worker_begin, {std::move(worker)}, std::move(done),
                   [](const redisReply*) { return Done{}; });
}

void RedisStore::async_take(std::string worker, std::size_t max_jobs,
                            Completion<std::vector<TakenJob>> done) {
  run_parsed<std::vector<TakenJob>>(
      Script::take, {std::move(worker), std::to_string(max_jobs)}, std::move(done),
      [](const redisReply* jobs) {
        std::vector<TakenJob> out;
        if (jobs == nullptr) return out;
        out.reserve(jobs->elements);
        for (std::size_t i = 0; i < jobs->elements; ++i) {
          const redisReply& j = *jobs->element[i];
          TakenJob& t = out.emplace_back();
          t.id = text(element(j, 0));
          t.lease = static_cast<std::uint64_t>(integer(element(j, 1)));
          t.input_json = text(element(j, 2));
          t.s3_config_json = text(element(j, 3));
          t.webhook = text(element(j, 4));
          t.policy.execution_timeout = std::chrono::milliseconds(integer(element(j, 5)));
          t.policy.ttl = std::chrono::milliseconds(integer(element(j, 6)));
          t.policy.low_priority = text(element(j, 7)) == "1";
          t.retries = static_cast<int>(integer(element(j, 8)));
        }
        return out;
      });
}

void RedisStore::async_release(std::string worker, std::vector<TakenJob> taken,
                               Completion<Done> done) {
  std::vector<std::string> args{worker};
  for (const TakenJob& t : taken) {
    args.push_back(t.id);
    args.push_back(std::to_string(t.lease));
  }
  run_parsed<Done>(Script::release, std::move(args), std::move(done),
                   [worker = std::move(worker)](const redisReply* released) {
                     for (std::size_t i = 0; released != nullptr && i < released->elements; ++i) {
                       log::info("job-take response to worker " + worker +
                                     " not delivered; job back at the head of the queue",
                                 text(released->element[i]));
                     }
                     return Done{};
                   });
}

PostOutcome RedisStore::post_outcome(const redisReply& result, std::string_view worker,
                                     std::string_view job, std::string_view what) const {
  const std::string_view outcome = text(element(result, 0));
  if (outcome == "accepted") return PostOutcome::accepted;
  if (outcome == "ignored") return PostOutcome::ignored;
  if (outcome == "not_found") return PostOutcome::not_found;
  const std::string_view holder = text(element(result, 2));
  log::warn("refused " + std::string(what) + " from worker " + std::string(worker) +
                ": the job is " + std::string(text(element(result, 1))) +
                (holder.empty() ? std::string() : ", held by worker " + std::string(holder)),
            job);
  return PostOutcome::refused;
}

void RedisStore::async_post_result(std::string worker, std::string job, WorkerResult result,
                                   Completion<PostOutcome> done) {
  const bool progress = result.kind == WorkerResult::Kind::progress;
  const char* kind = progress ? "p" : result.kind == WorkerResult::Kind::error ? "e" : "o";
  run_parsed<PostOutcome>(
      Script::post_result,
      {worker, job, kind, std::move(result.output_json), std::move(result.error)}, std::move(done),
      [this, worker, job, progress](const redisReply* r) {
        if (r == nullptr) throw RedisError("redis script: unexpected reply");
        return post_outcome(*r, worker, job, progress ? "a progress update" : "a result");
      });
}

void RedisStore::async_post_stream(std::string worker, std::string job, std::string chunk_json,
                                   Completion<PostOutcome> done) {
  run_parsed<PostOutcome>(Script::post_stream, {worker, job, std::move(chunk_json)},
                          std::move(done), [this, worker, job](const redisReply* r) {
                            if (r == nullptr) throw RedisError("redis script: unexpected reply");
                            return post_outcome(*r, worker, job, "a stream chunk");
                          });
}

void RedisStore::async_ping(std::string worker, std::vector<std::string> job_ids,
                            Completion<Done> done) {
  std::vector<std::string> args;
  args.reserve(job_ids.size() + 1);
  args.push_back(std::move(worker));
  for (std::string& id : job_ids) args.push_back(std::move(id));
  run_parsed<Done>(Script::ping, std::move(args), std::move(done),
                   [](const redisReply*) { return Done{}; });
}

void RedisStore::async_report_in_progress(std::string worker, bool holding, Completion<Done> done) {
  run_parsed<Done>(Script::report_in_progress, {std::move(worker), holding ? "1" : "0"},
                   std::move(done), [](const redisReply*) { return Done{}; });
}

void RedisStore::async_take_stop_requests(std::string worker,
                                          Completion<std::vector<std::string>> done) {
  run_parsed<std::vector<std::string>>(
      Script::take_stop, {std::move(worker)}, std::move(done), [](const redisReply* ids) {
        std::vector<std::string> out;
        for (std::size_t i = 0; ids != nullptr && i < ids->elements; ++i)
          out.emplace_back(text(ids->element[i]));
        return out;
      });
}

// Run from the server's timer: a Redis that is away for a moment must not end the sweeper. Said
// once per outage, not once per sweep.
void RedisStore::async_sweep(Completion<Done> done) {
  sweep_round(1, std::move(done));
}

void RedisStore::sweep_round(int round, Completion<Done> done) {
  run(Script::sweep, {std::to_string(kSweepBatch), round == 1 ? "1" : "0"},
      [this, round, done = std::move(done)](std::exception_ptr error, const redisReply* r) mutable {
        if (!error) {
          if (sweep_failing_.exchange(false)) log::info("redis store: sweeping again");
          // More was due than one call takes: the next call goes behind the commands sent
          // meanwhile, which run between the two.
          if (integer(element(*r, 0)) == 1 && round < kMaxSweepRounds)
            return sweep_round(round + 1, std::move(done));
        } else {
          try {
            std::rethrow_exception(error);
          } catch (const std::exception& e) {
            if (!sweep_failing_.exchange(true))
              log::warn(std::string("redis store: sweep failed: ") + e.what());
          }
        }
        done(nullptr, Done{});
      });
}

// ---- the plain calls: the async ones, waited for

SubmitResult RedisStore::submit(NewJob job) {
  return wait<SubmitResult>([&](auto done) { async_submit(std::move(job), std::move(done)); });
}
std::optional<JobRecord> RedisStore::status(std::string_view id) {
  return wait<std::optional<JobRecord>>(
      [&](auto done) { async_status(std::string(id), std::move(done)); });
}
std::optional<StreamBatch> RedisStore::stream(std::string_view id) {
  return wait<std::optional<StreamBatch>>(
      [&](auto done) { async_stream(std::string(id), std::move(done)); });
}
std::optional<StreamBatch> RedisStore::read_stream(std::string_view id, std::size_t cursor) {
  return wait<std::optional<StreamBatch>>(
      [&](auto done) { async_read_stream(std::string(id), cursor, std::move(done)); });
}
std::optional<JobStatus> RedisStore::cancel(std::string_view id) {
  return wait<std::optional<JobStatus>>(
      [&](auto done) { async_cancel(std::string(id), std::move(done)); });
}
RetryOutcome RedisStore::retry(std::string_view id) {
  return wait<RetryOutcome>([&](auto done) { async_retry(std::string(id), std::move(done)); });
}
std::size_t RedisStore::purge_queue() {
  return wait<std::size_t>([&](auto done) { async_purge_queue(std::move(done)); });
}
HealthCounts RedisStore::health() {
  return wait<HealthCounts>([&](auto done) { async_health(std::move(done)); });
}
void RedisStore::worker_begin(std::string_view worker) {
  wait<Done>([&](auto done) { async_worker_begin(std::string(worker), std::move(done)); });
}
std::vector<TakenJob> RedisStore::take(std::string_view worker, std::size_t max_jobs) {
  return wait<std::vector<TakenJob>>(
      [&](auto done) { async_take(std::string(worker), max_jobs, std::move(done)); });
}
void RedisStore::release(std::string_view worker, const std::vector<TakenJob>& taken) {
  wait<Done>([&](auto done) { async_release(std::string(worker), taken, std::move(done)); });
}
PostOutcome RedisStore::post_result(std::string_view worker, std::string_view job,
                                    WorkerResult result) {
  return wait<PostOutcome>([&](auto done) {
    async_post_result(std::string(worker), std::string(job), std::move(result), std::move(done));
  });
}
PostOutcome RedisStore::post_stream(std::string_view worker, std::string_view job,
                                    std::string chunk_json) {
  return wait<PostOutcome>([&](auto done) {
    async_post_stream(std::string(worker), std::string(job), std::move(chunk_json),
                      std::move(done));
  });
}
void RedisStore::ping(std::string_view worker, const std::vector<std::string>& job_ids) {
  wait<Done>([&](auto done) { async_ping(std::string(worker), job_ids, std::move(done)); });
}
void RedisStore::report_in_progress(std::string_view worker, bool holding) {
  wait<Done>(
      [&](auto done) { async_report_in_progress(std::string(worker), holding, std::move(done)); });
}
std::vector<std::string> RedisStore::take_stop_requests(std::string_view worker) {
  return wait<std::vector<std::string>>(
      [&](auto done) { async_take_stop_requests(std::string(worker), std::move(done)); });
}
void RedisStore::sweep() {
  wait<Done>([&](auto done) { async_sweep(std::move(done)); });
}

// ---- change notification

void RedisStore::fire(Topic topic, std::string_view key) {
  watches_.fire(topic, key);
}

void RedisStore::fire_all() {
  watches_.fire_all();
}

// Each replica wakes its own pollers, one per queued job; notes and messages may arrive out of
// order (a script's reply and another replica's publish race), so an older length never overrides
// a newer one.
void RedisStore::queue_changed(std::uint64_t version, std::size_t length) {
  std::lock_guard lock(queue_mu_);
  if (version <= queue_version_) return;
  queue_version_ = version;
  watches_.set_queued(length);
}

Subscription RedisStore::watch(Topic topic, std::string_view key, std::function<void()> notify) {
  return watches_.watch(topic, key, std::move(notify));
}

void RedisStore::wake_all() {
  fire_all();
}

// Another replica's change: ["message", channel, "origin\nnote\nnote..."], one message per script
// run, its notes as the script returned them. This instance's own changes were applied when its
// script returned.
void RedisStore::on_message(const redisReply& reply) {
  if (text(element(reply, 0)) != "message") return;
  std::string_view payload = text(element(reply, 2));
  const auto eol = payload.find('\n');
  if (payload.substr(0, eol) == origin_ || eol == std::string_view::npos) return;
  payload.remove_prefix(eol + 1);
  while (!payload.empty()) {
    const auto end = payload.find('\n');
    apply_note(payload.substr(0, end));
    if (end == std::string_view::npos) break;
    payload.remove_prefix(end + 1);
  }
}

void RedisStore::subscriber_loop(std::stop_token stop, std::unique_ptr<RedisConnection> c) {
  bool reported = false;
  while (!stop.stop_requested()) {
    try {
      if (!c) {
        c = std::make_unique<RedisConnection>(address_, kIoTimeout);
        const RedisReply confirm = c->command({"SUBSCRIBE", prefix_ + "ev"});
        if (confirm->type == REDIS_REPLY_ERROR) throw RedisError(std::string(reply_text(*confirm)));
        // Before the waiters look again: from here on the other replicas publish to this one.
        announce_listening();
        log::info("redis store: change channel of endpoint " + endpoint_id_ + " subscribed again");
        reported = false;
        // Changes made while away were not heard: every waiter looks again.
        fire_all();
      }
      for (;;) {
        while (RedisReply r = c->buffered_reply()) on_message(*r);
        pollfd fds[2] = {{c->fd(), POLLIN, 0}, {wake_.fd(), POLLIN, 0}};
        ::poll(fds, 2, -1);
        if (stop.stop_requested()) return;
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) c->read_some();
      }
    } catch (const RedisError& e) {
      c.reset();
      if (!reported)
        log::warn(std::string("redis store: change channel lost, reconnecting: ") + e.what());
      reported = true;
      pollfd wake{wake_.fd(), POLLIN, 0};
      ::poll(&wake, 1, static_cast<int>(kReconnectPause.count()));
    }
  }
}

}  // namespace podworker::endpoint

#include "redis_store.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <charconv>
#include <random>

#include "podworker/log.h"

namespace podworker::endpoint {

namespace {

using Script = redis_script::Id;

constexpr std::chrono::milliseconds kIoTimeout{5'000};
constexpr std::chrono::milliseconds kReconnectPause{500};
constexpr std::size_t kMaxIdleConnections = 16;

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

// A job hash as HGETALL returned it; views into the reply.
class JobFields {
 public:
  explicit JobFields(const redisReply& flat) {
    for (std::size_t i = 0; i + 1 < flat.elements; i += 2)
      fields_.emplace(text(flat.element[i]), text(flat.element[i + 1]));
  }
  bool empty() const { return fields_.empty(); }
  std::string_view operator[](std::string_view name) const {
    const auto it = fields_.find(name);
    return it == fields_.end() ? std::string_view{} : it->second;
  }
  std::int64_t number(std::string_view name) const { return to_int((*this)[name]); }

 private:
  std::map<std::string_view, std::string_view, std::less<>> fields_;
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

// The endpoint's channels as a PSUBSCRIBE pattern: glob characters in an endpoint id match only
// themselves.
std::string channel_pattern(std::string_view prefix) {
  std::string p;
  for (const char ch : prefix) {
    if (ch == '*' || ch == '?' || ch == '[' || ch == ']' || ch == '\\') p.push_back('\\');
    p.push_back(ch);
  }
  return p + "ev:*";
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

// Idle connections, reused; a broken one is dropped and the next caller connects afresh (so a
// Redis restart costs the requests in flight at that moment, not the endpoint).
class RedisStore::Pool {
 public:
  explicit Pool(RedisAddress address) : address_(std::move(address)) {}

  class Lease {
   public:
    Lease(Pool& pool, std::unique_ptr<RedisConnection> c) : pool_(pool), c_(std::move(c)) {}
    ~Lease() { pool_.give_back(std::move(c_)); }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    RedisConnection& operator*() const { return *c_; }

   private:
    Pool& pool_;
    std::unique_ptr<RedisConnection> c_;
  };

  Lease acquire() {
    {
      std::lock_guard lock(mu_);
      while (!idle_.empty()) {
        auto c = std::move(idle_.back());
        idle_.pop_back();
        if (c->still_open()) return Lease(*this, std::move(c));
      }
    }
    return Lease(*this, std::make_unique<RedisConnection>(address_, kIoTimeout));
  }

 private:
  void give_back(std::unique_ptr<RedisConnection> c) {
    if (!c || c->broken()) return;
    std::lock_guard lock(mu_);
    if (idle_.size() < kMaxIdleConnections) idle_.push_back(std::move(c));
  }

  const RedisAddress address_;
  std::mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_;
};

RedisStore::WakeFd::WakeFd() : fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (fd < 0) throw std::runtime_error("eventfd failed");
}
RedisStore::WakeFd::~WakeFd() {
  ::close(fd);
}
void RedisStore::WakeFd::signal() const {
  const std::uint64_t one = 1;
  [[maybe_unused]] const auto n = ::write(fd, &one, sizeof one);
}

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
      on_terminal_(std::move(on_terminal)),
      pool_(std::make_unique<Pool>(address_)) {
  {
    auto c = pool_->acquire();
    for (std::size_t i = 0; i < redis_script::kCount; ++i) {
      const RedisReply r =
          (*c).command({"SCRIPT", "LOAD", redis_script::source(static_cast<Script>(i))});
      if (r->type == REDIS_REPLY_ERROR) {
        throw RedisError("redis " + address_.url() +
                         ": loading a script failed: " + std::string(reply_text(*r)));
      }
      shas_[i] = std::string(reply_text(*r));
    }
  }
  // Subscribed before the constructor returns: a watch() registered right after must not miss a
  // change.
  auto subscriber = std::make_unique<RedisConnection>(address_, kIoTimeout);
  const RedisReply confirm = subscriber->command({"PSUBSCRIBE", channel_pattern(prefix_)});
  if (confirm->type == REDIS_REPLY_ERROR) {
    throw RedisError("redis " + address_.url() +
                     ": PSUBSCRIBE failed: " + std::string(reply_text(*confirm)));
  }
  subscriber_ = std::jthread([this, c = std::move(subscriber)](std::stop_token stop) mutable {
    subscriber_loop(std::move(stop), std::move(c));
  });
}

RedisStore::~RedisStore() {
  subscriber_.request_stop();
  wake_.signal();
}

std::int64_t RedisStore::now_ms() const {
  return wall_offset_ms_ +
         std::chrono::duration_cast<std::chrono::milliseconds>(clock_->now().time_since_epoch())
             .count();
}

// ---- scripts

RedisReply RedisStore::eval(RedisConnection& c, Script script,
                            const std::vector<std::string>& args) {
  const auto i = static_cast<std::size_t>(script);
  std::vector<std::string_view> argv;
  argv.reserve(args.size() + 3);
  argv.emplace_back("EVALSHA");
  argv.emplace_back(shas_[i]);
  argv.emplace_back("0");
  for (const std::string& a : args) argv.emplace_back(a);
  RedisReply r = c.command(argv);
  // A restarted Redis has forgotten the scripts: EVAL sends the source (and caches it again).
  if (r->type == REDIS_REPLY_ERROR && reply_text(*r).starts_with("NOSCRIPT")) {
    argv[0] = "EVAL";
    argv[1] = redis_script::source(script);
    r = c.command(argv);
  }
  if (r->type == REDIS_REPLY_ERROR)
    throw RedisError("redis script failed: " + std::string(reply_text(*r)));
  if (r->type != REDIS_REPLY_ARRAY || r->elements != 4)
    throw RedisError("redis script: unexpected reply");
  return r;
}

RedisReply RedisStore::run(Script script, const std::vector<std::string>& args) {
  std::vector<std::string> all;
  all.reserve(redis_script::kCommonArgs + args.size());
  all.push_back(prefix_);
  all.push_back(origin_);
  all.push_back(std::to_string(now_ms()));
  all.push_back(std::to_string(options_.retention.count()));
  all.push_back(std::to_string(options_.runsync_retention.count()));
  all.push_back(std::to_string(options_.heartbeat_grace.count()));
  all.push_back(std::to_string(options_.retry_limit));
  all.insert(all.end(), args.begin(), args.end());
  RedisReply r;
  {
    auto c = pool_->acquire();
    r = eval(*c, script, all);
  }
  apply(*r);
  return r;
}

void RedisStore::apply(const redisReply& reply) {
  if (const redisReply* logs = element(reply, 3); logs != nullptr) {
    for (std::size_t i = 0; i + 1 < logs->elements; i += 2)
      log::warn(text(logs->element[i + 1]), text(logs->element[i]));
  }
  if (const redisReply* notes = element(reply, 1); notes != nullptr) {
    for (std::size_t i = 0; i < notes->elements; ++i) {
      const std::string_view n = text(notes->element[i]);
      if (n.empty()) continue;
      if (n[0] == 'j') {
        fire(Topic::job, n.substr(1));
      } else if (n[0] == 's') {
        fire(Topic::stop, n.substr(1));
      } else if (n[0] == 'q') {
        const auto colon = n.find(':');
        queue_changed(static_cast<std::uint64_t>(to_int(n.substr(1, colon - 1))),
                      static_cast<std::size_t>(to_int(n.substr(colon + 1))));
      }
    }
  }
  if (const redisReply* events = element(reply, 2); events != nullptr && on_terminal_) {
    for (std::size_t i = 0; i < events->elements; ++i) {
      const JobFields job(*events->element[i]);
      if (job.empty()) continue;
      on_terminal_({std::string(job["webhook"]), job_record(job)});
    }
  }
}

// ---- client API

SubmitResult RedisStore::submit(NewJob job) {
  SubmitResult result;
  result.job_bytes = queued_payload_bytes(job);
  const RedisReply r =
      run(Script::submit, {job.id, job.input_json, job.webhook, job.s3_config_json,
                           std::to_string(job.policy.execution_timeout.count()),
                           std::to_string(job.policy.ttl.count()),
                           job.policy.low_priority ? "1" : "0", job.sync ? "1" : "0",
                           std::to_string(result.job_bytes), std::to_string(options_.max_queued_bytes)});
  const std::string answer(text(element(*r, 0)));
  if (answer == "duplicate") throw std::logic_error("duplicate job id " + job.id);
  // "full HELD": the queued jobs of all replicas together would pass the cap.
  if (answer.starts_with("full ")) {
    result.accepted = false;
    result.queued_bytes = std::stoull(answer.substr(5));
  }
  return result;
}

std::optional<JobRecord> RedisStore::status(std::string_view id) {
  RedisReply r;
  {
    auto c = pool_->acquire();
    r = (*c).command({"HGETALL", prefix_ + "job:" + std::string(id)});
  }
  if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) return std::nullopt;
  const JobFields job(*r);
  if (!parse_status(job["st"])) return std::nullopt;  // not a whole job hash: treat as gone
  return job_record(job);
}

std::optional<StreamBatch> RedisStore::stream(std::string_view id) {
  const RedisReply r = run(Script::stream, {std::string(id)});
  return stream_batch(element(*r, 0));
}

std::optional<StreamBatch> RedisStore::read_stream(std::string_view id, std::size_t cursor) {
  const RedisReply r = run(Script::read_stream, {std::string(id), std::to_string(cursor)});
  return stream_batch(element(*r, 0));
}

std::optional<JobStatus> RedisStore::cancel(std::string_view id) {
  const RedisReply r = run(Script::cancel, {std::string(id)});
  return parse_status(text(element(*r, 0)));
}

RetryOutcome RedisStore::retry(std::string_view id) {
  const RedisReply r = run(Script::retry, {std::string(id)});
  const std::string_view result = text(element(*r, 0));
  if (result == "requeued") return RetryOutcome::requeued;
  if (result == "not_retryable") return RetryOutcome::not_retryable;
  return RetryOutcome::not_found;
}

std::size_t RedisStore::purge_queue() {
  const RedisReply r = run(Script::purge, {});
  return static_cast<std::size_t>(integer(element(*r, 0)));
}

HealthCounts RedisStore::health() {
  const RedisReply r = run(Script::health, {});
  const redisReply* h = element(*r, 0);
  if (h == nullptr) return {};
  auto at = [&](std::size_t i) { return static_cast<std::size_t>(integer(element(*h, i))); };
  HealthCounts out;
  out.completed = at(0);
  out.failed = at(1);
  out.in_progress = at(2);
  out.in_queue = at(3);
  out.retried = at(4);
  out.workers_idle = at(5);
  out.workers_running = at(6);
  return out;
}

// ---- worker API

void RedisStore::worker_begin(std::string_view worker) {
  run(Script::worker_begin, {std::string(worker)});
}

// Called from the destructor of a request's bracket: it must not throw. A lost decrement only
// leaves the open-request count high, which no rule depends on.
void RedisStore::worker_end(std::string_view worker) {
  try {
    run(Script::worker_end, {std::string(worker)});
  } catch (const RedisError& e) {
    log::warn(std::string("redis store: worker_end: ") + e.what());
  }
}

std::vector<TakenJob> RedisStore::take(std::string_view worker, std::size_t max_jobs) {
  const RedisReply r = run(Script::take, {std::string(worker), std::to_string(max_jobs)});
  std::vector<TakenJob> out;
  const redisReply* jobs = element(*r, 0);
  if (jobs == nullptr) return out;
  for (std::size_t i = 0; i < jobs->elements; ++i) {
    const redisReply& j = *jobs->element[i];
    const std::string_view id = text(element(j, 0));
    out.push_back({std::string(id), static_cast<std::uint64_t>(integer(element(j, 1))),
                   std::string(text(element(j, 2))), std::string(text(element(j, 3))),
                   std::string(text(element(j, 4)))});
  }
  return out;
}

void RedisStore::release(std::string_view worker, const std::vector<TakenJob>& taken) {
  std::vector<std::string> args{std::string(worker)};
  for (const TakenJob& t : taken) {
    args.push_back(t.id);
    args.push_back(std::to_string(t.lease));
  }
  const RedisReply r = run(Script::release, args);
  if (const redisReply* released = element(*r, 0); released != nullptr) {
    for (std::size_t i = 0; i < released->elements; ++i) {
      log::info("job-take response to worker " + std::string(worker) +
                    " not delivered; job back at the head of the queue",
                text(released->element[i]));
    }
  }
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

PostOutcome RedisStore::post_result(std::string_view worker, std::string_view job,
                                    WorkerResult result) {
  const bool progress = result.kind == WorkerResult::Kind::progress;
  const char* kind = progress ? "p" : result.kind == WorkerResult::Kind::error ? "e" : "o";
  const RedisReply r =
      run(Script::post_result, {std::string(worker), std::string(job), kind,
                                std::move(result.output_json), std::move(result.error)});
  return post_outcome(*element(*r, 0), worker, job, progress ? "a progress update" : "a result");
}

PostOutcome RedisStore::post_stream(std::string_view worker, std::string_view job,
                                    std::string chunk_json) {
  const RedisReply r =
      run(Script::post_stream, {std::string(worker), std::string(job), std::move(chunk_json)});
  return post_outcome(*element(*r, 0), worker, job, "a stream chunk");
}

void RedisStore::ping(std::string_view worker, const std::vector<std::string>& job_ids) {
  std::vector<std::string> args{std::string(worker)};
  args.insert(args.end(), job_ids.begin(), job_ids.end());
  run(Script::ping, args);
}

void RedisStore::report_in_progress(std::string_view worker, bool holding) {
  run(Script::report_in_progress, {std::string(worker), holding ? "1" : "0"});
}

std::vector<std::string> RedisStore::take_stop_requests(std::string_view worker) {
  const RedisReply r = run(Script::take_stop, {std::string(worker)});
  std::vector<std::string> out;
  if (const redisReply* ids = element(*r, 0); ids != nullptr) {
    for (std::size_t i = 0; i < ids->elements; ++i) out.emplace_back(text(ids->element[i]));
  }
  return out;
}

// ---- time

void RedisStore::sweep() {
  // Called from the server's timer: a Redis that is away for a moment must not end the sweeper.
  // Said once per outage, not once per sweep.
  try {
    run(Script::sweep, {});
    if (sweep_failing_.exchange(false)) log::info("redis store: sweeping again");
  } catch (const RedisError& e) {
    if (!sweep_failing_.exchange(true))
      log::warn(std::string("redis store: sweep failed: ") + e.what());
  }
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

// Another replica's change: ["pmessage", pattern, channel, payload]. This instance's own changes
// were applied when its script returned.
void RedisStore::on_message(const redisReply& reply) {
  if (text(element(reply, 0)) != "pmessage") return;
  const std::string_view channel = text(element(reply, 2));
  const std::string_view payload = text(element(reply, 3));
  if (payload.substr(0, origin_.size()) == origin_) return;
  const std::string events = prefix_ + "ev:";
  if (!channel.starts_with(events)) return;
  const std::string_view topic = channel.substr(events.size());
  if (topic.starts_with("job:")) {
    fire(Topic::job, topic.substr(4));
  } else if (topic.starts_with("stop:")) {
    fire(Topic::stop, topic.substr(5));
  } else if (topic == "queue") {
    // "origin version length"
    const auto a = payload.find(' ');
    const auto b = payload.find(' ', a == std::string_view::npos ? a : a + 1);
    if (a == std::string_view::npos || b == std::string_view::npos) return;
    queue_changed(static_cast<std::uint64_t>(to_int(payload.substr(a + 1, b - a - 1))),
                  static_cast<std::size_t>(to_int(payload.substr(b + 1))));
  }
}

void RedisStore::subscriber_loop(std::stop_token stop, std::unique_ptr<RedisConnection> c) {
  bool reported = false;
  while (!stop.stop_requested()) {
    try {
      if (!c) {
        c = std::make_unique<RedisConnection>(address_, kIoTimeout);
        const RedisReply confirm = c->command({"PSUBSCRIBE", channel_pattern(prefix_)});
        if (confirm->type == REDIS_REPLY_ERROR) throw RedisError(std::string(reply_text(*confirm)));
        log::info("redis store: change channel of endpoint " + endpoint_id_ + " subscribed again");
        reported = false;
        // Changes made while away were not heard: every waiter looks again.
        fire_all();
      }
      for (;;) {
        while (RedisReply r = c->buffered_reply()) on_message(*r);
        pollfd fds[2] = {{c->fd(), POLLIN, 0}, {wake_.fd, POLLIN, 0}};
        ::poll(fds, 2, -1);
        if (stop.stop_requested()) return;
        if ((fds[0].revents & (POLLIN | POLLHUP | POLLERR)) != 0) c->read_some();
      }
    } catch (const RedisError& e) {
      c.reset();
      if (!reported)
        log::warn(std::string("redis store: change channel lost, reconnecting: ") + e.what());
      reported = true;
      pollfd wake{wake_.fd, POLLIN, 0};
      ::poll(&wake, 1, static_cast<int>(kReconnectPause.count()));
    }
  }
}

}  // namespace podworker::endpoint

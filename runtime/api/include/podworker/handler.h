// The podworker handler API: the one header a handler author includes.
//
// A handler is a class registered by name. The worker creates ONE instance per process, calls
// init(context) once before the first job (load models, allocate GPU memory; the context holds the
// handler's resolved settings, the worker id and a logger), execute() for each job — concurrently
// from up to `concurrency` threads, so execute() must be thread-safe when the worker runs more
// than one job at once — and finalize() once at shutdown.
//
// A job streams when its handler yields chunks through the Emitter (or streams() is true). A
// streaming job's returned Output fails the job when it is an error; when ok and not null it is
// the job's final summary: the result /status and /runsync show, while /stream clients read the
// chunks (with --return-aggregate-stream the result is the chunks instead). Exceptions thrown by
// execute() fail that job only, never the worker; an InputError (podworker/input.h) fails it with
// just its message.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "podworker/chat_request.h"
#include "podworker/input.h"
#include "podworker/json.h"
#include "podworker/log.h"
#include "podworker/settings.h"

namespace podworker {

// What a job produced: a JSON value, or an error message (with optional extra output fields, sent
// as the protocol's {"error": msg, "output": {...}}).
class Output {
 public:
  Output() { value_.SetNull(); }

  static Output ok(json::Document value) {
    Output o;
    o.value_ = std::move(value);
    return o;
  }
  // Convenience for handlers whose result is a string.
  static Output ok(std::string_view text) {
    Output o;
    o.value_.SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()),
                       o.value_.GetAllocator());
    return o;
  }
  static Output error(std::string message, json::Document extra = {}) {
    Output o;
    o.error_ = std::move(message);
    o.is_error_ = true;
    o.value_ = std::move(extra);
    return o;
  }

  bool is_error() const { return is_error_; }
  const std::string& error_message() const { return error_; }
  // The result (ok) or the extra output fields (error; null when none).
  const json::Document& value() const { return value_; }
  json::Document& value() { return value_; }

 private:
  json::Document value_;
  std::string error_;
  bool is_error_ = false;
};

enum class StopReason { none, cancelled, timed_out, shutdown };

inline std::string_view stop_reason_name(StopReason reason) {
  switch (reason) {
    case StopReason::none:
      return "none";
    case StopReason::cancelled:
      return "cancelled";
    case StopReason::timed_out:
      return "timed_out";
    case StopReason::shutdown:
      return "shutdown";
  }
  return "none";
}

// The worker's log, each line tagged with the handler's name ("[textgen] model loaded"), and
// with a job id when one is given: on RunPod that id is the line's requestId.
class Logger {
 public:
  Logger() = default;
  explicit Logger(std::string tag) : prefix_(tag.empty() ? std::string() : "[" + tag + "] ") {}
  void error(std::string_view m, std::string_view job_id = {}) const {
    write(log::Level::error, m, job_id);
  }
  void warn(std::string_view m, std::string_view job_id = {}) const {
    write(log::Level::warn, m, job_id);
  }
  void info(std::string_view m, std::string_view job_id = {}) const {
    write(log::Level::info, m, job_id);
  }
  void debug(std::string_view m, std::string_view job_id = {}) const {
    write(log::Level::debug, m, job_id);
  }

 private:
  void write(log::Level level, std::string_view m, std::string_view job_id) const {
    if (log::enabled(level)) log::write(level, prefix_ + std::string(m), job_id);
  }
  std::string prefix_;
};

// What init() is given. Default-constructed it holds no settings: only for handlers that
// declare none, or tests that build a handler around already loaded state.
struct HandlerContext {
  std::string handler_name;
  std::string worker_id;
  Settings settings;  // every declared setting, resolved (see podworker/settings.h)
  // GPUs the platform assigned (CUDA_VISIBLE_DEVICES, else NVIDIA_VISIBLE_DEVICES, split at
  // commas); empty when neither is set, and the handler probes devices itself.
  std::vector<std::string> devices;
  Logger log;
  // The worker's --concurrency (or PODWORKER_CONCURRENCY); nullopt when neither was given and
  // the worker will run capacity() jobs at once.
  std::optional<int> concurrency;
};

// One job as the handler sees it. Implemented by the runtime; valid only during execute().
class Job {
 public:
  virtual ~Job() = default;

  virtual const std::string& id() const = 0;
  // The job's "input" value (always present; an object for jobs from a RunPod-style endpoint).
  virtual const json::Value& input() const = 0;
  // The whole job object as received; extra keys such as "webhook" or "s3Config" pass through.
  virtual const json::Value& raw() const = 0;
  const json::Value* field(std::string_view key) const { return json::find(raw(), key); }

  // Requested when the job is cancelled, times out, or the worker must stop. Long-running handlers
  // check it between steps (or register a std::stop_callback) and return promptly; nothing is
  // posted for a cancelled job.
  virtual std::stop_token stop_token() const = 0;
  bool cancelled() const { return stop_token().stop_requested(); }
  // Why the stop token was requested; none while it was not. Nothing is posted for a job stopped
  // by cancel or shutdown (the endpoint requeues one stopped by shutdown); a job stopped by its
  // deadline fails with a timeout error whatever the handler returns.
  virtual StopReason stop_reason() const {
    return cancelled() ? StopReason::cancelled : StopReason::none;
  }
  // When the worker stops this job with StopReason::timed_out: from the job's
  // policy.executionTimeout when it carries one, else the worker's --job-timeout-ms; none when
  // neither is set (the platform may still time the job out, which arrives as a cancel).
  virtual std::optional<std::chrono::steady_clock::time_point> deadline() const {
    return std::nullopt;
  }
  std::optional<std::chrono::milliseconds> time_left() const {
    const auto d = deadline();
    if (!d) return std::nullopt;
    return std::max(std::chrono::milliseconds(0),
                    std::chrono::duration_cast<std::chrono::milliseconds>(
                        *d - std::chrono::steady_clock::now()));
  }
  // How many times this job was run before (the job's "retries" field; 0 when absent).
  virtual int retry_count() const { return 0; }

  // Posts a progress update, shown as the job's "output" by /status while it runs. Returns at
  // once: a sender posts it; of the updates made while one is in flight only the newest is sent,
  // and one still unsent when the job ends is dropped (the result supersedes it).
  virtual void progress(const json::Value& update) = 0;
  void progress(std::string_view message) {
    json::Value v(rapidjson::StringRef(message.data(), message.size()));
    progress(v);
  }

  // Asks the platform to restart this worker once the job is done (the protocol's "stopPod").
  virtual void request_refresh() = 0;
};

// Sends the chunks of a streaming job. yield() copies the chunk and returns without waiting for
// the network: a sender posts the job's chunks in order, one post in flight at a time, and the
// chunks yielded while a post is in flight go out together in the next one (strings concatenate,
// other chunks merge through Handler::merge_chunks). No post exceeds 1 MB (larger strings and
// arrays are split, see docs/handlers.md). yield() waits only when the chunks not yet delivered
// fill the job's buffer, and throws once a post could not be delivered.
class Emitter {
 public:
  virtual ~Emitter() = default;
  virtual void yield(const json::Value& chunk) = 0;
  void yield(std::string_view text) {
    json::Value v(rapidjson::StringRef(text.data(), text.size()));
    yield(v);
  }
};

class Handler {
 public:
  virtual ~Handler() = default;
  // The settings this handler reads in init(); `worker --help` lists them. Called before init()
  // (and by --help on every registered handler), so it must not depend on state init() creates.
  virtual std::vector<Setting> settings() const { return {}; }
  // Once, before the first job. An exception stops the worker at start, with its message.
  virtual void init(const HandlerContext& context) { (void)context; }
  virtual void finalize() {}
  // True when every job of this handler streams, even one that yields nothing. A job of any
  // handler that yields streams; this only says so up front (the worker then requires a
  // job-stream URL at start).
  virtual bool streams() const { return false; }
  virtual Output execute(Job& job, Emitter& out) = 0;
  // How many jobs this handler runs well at once (a batching engine's slots), known once init()
  // has run: the worker's concurrency when --concurrency and PODWORKER_CONCURRENCY are unset.
  virtual int capacity() const { return 1; }
  // Consulted by the worker before each take: how many jobs may run at once now. `configured` is
  // the worker's --concurrency. Override to adapt to load (the SDK's concurrency_modifier); values
  // below 1 count as 1. Called from the worker's taking thread only.
  virtual int concurrency(int configured) { return configured; }
  // For a handler serving OpenAI chat completions: what its model allows (the context length),
  // known once init() has run; the default says nothing. `worker --serve-api` hands it to the
  // endpoint, which then refuses a max_tokens beyond the context before a job exists.
  virtual chat::ChatLimits chat_limits() const { return {}; }
  // How successive non-string stream chunks merge when the network is slower than the handler.
  // `chunks` are two or more chunks in the order they were yielded. Merge a leading run of them
  // into `merged` — the one chunk a client reassembling the stream would read the same as that
  // run — and return its length; return 0 or 1 to send chunks[0] alone. The default merges
  // nothing: each non-string chunk is its own post. Strings are concatenated by the runtime
  // without asking. Runs on the job's sender thread, for several jobs at once: it must be
  // thread-safe and should be cheap (linear in what it merges).
  virtual std::size_t merge_chunks(std::span<const json::Value* const> chunks, json::Document& merged) const {
    (void)chunks;
    (void)merged;
    return 0;
  }
};

using HandlerFactory = std::function<std::unique_ptr<Handler>()>;

// Name → factory. The worker looks up --handler NAME here (or its default: see worker_main).
class HandlerRegistry {
 public:
  static HandlerRegistry& global() {
    static HandlerRegistry registry;
    return registry;
  }

  void add(std::string name, HandlerFactory factory) {
    factories_[std::move(name)] = std::move(factory);
  }
  template <typename H>
  void add(std::string name) {
    add(std::move(name), [] { return std::make_unique<H>(); });
  }
  bool contains(const std::string& name) const { return factories_.count(name) != 0; }
  std::unique_ptr<Handler> create(const std::string& name) const {
    auto it = factories_.find(name);
    if (it == factories_.end()) throw std::invalid_argument("unknown handler: " + name);
    return it->second();
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, _] : factories_) out.push_back(name);
    return out;
  }

 private:
  std::map<std::string, HandlerFactory> factories_;
};

// Adapters for handlers written as plain functions.
using PlainFunction = std::function<Output(Job&)>;
using StreamFunction = std::function<void(Job&, Emitter&)>;

inline HandlerFactory plain_handler(PlainFunction fn) {
  struct Adapter final : Handler {
    explicit Adapter(PlainFunction f) : f_(std::move(f)) {}
    Output execute(Job& job, Emitter&) override { return f_(job); }
    PlainFunction f_;
  };
  return [fn = std::move(fn)] { return std::make_unique<Adapter>(fn); };
}

inline HandlerFactory streaming_handler(StreamFunction fn) {
  struct Adapter final : Handler {
    explicit Adapter(StreamFunction f) : f_(std::move(f)) {}
    bool streams() const override { return true; }
    Output execute(Job& job, Emitter& out) override {
      f_(job, out);
      return Output{};
    }
    StreamFunction f_;
  };
  return [fn = std::move(fn)] { return std::make_unique<Adapter>(fn); };
}

}  // namespace podworker

// The podworker handler API: the one header a handler author includes.
//
// A handler is a class registered by name. The worker creates ONE instance per process, calls
// init() once before the first job (load models, allocate GPU memory), execute() for each job —
// concurrently from up to `concurrency` threads, so execute() must be thread-safe when the worker
// runs with --concurrency > 1 — and finalize() once at shutdown.
//
// A plain handler returns its result from execute(). A streaming handler (streams() == true) yields
// chunks through the Emitter any number of times; its returned Output is ignored when ok and fails
// the job when it is an error. Exceptions thrown by execute() fail that job only, never the worker.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <stdexcept>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "podworker/chat_request.h"
#include "podworker/json.h"
#include "podworker/log.h"

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
  virtual void init() {}
  virtual void finalize() {}
  // True for generator-style handlers that yield chunks through the Emitter.
  virtual bool streams() const { return false; }
  virtual Output execute(Job& job, Emitter& out) = 0;
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

// Name → factory. The worker looks up --handler NAME here.
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

#include "job_run.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "error_report.h"
#include "podworker/log.h"
#include "stream_split.h"

namespace podworker::worker {
namespace {

class RunningJob final : public Job {
 public:
  RunningJob(const json::Value& raw, JobSink& sink, std::stop_token stop, std::size_t max_post_bytes,
             std::mutex& sink_mutex)
      : raw_(raw), sink_(sink), stop_(std::move(stop)), max_post_bytes_(max_post_bytes),
        sink_mutex_(sink_mutex) {
    id_ = json::get_string(raw_, "id");
    input_ = json::find(raw_, "input");
  }

  const std::string& id() const override { return id_; }
  const json::Value& input() const override { return *input_; }
  const json::Value& raw() const override { return raw_; }
  std::stop_token stop_token() const override { return stop_; }

  void progress(const json::Value& update) override {
    if (stop_.stop_requested()) return;  // nothing is posted for a stopped job
    json::Document body;
    body.SetObject();
    auto& a = body.GetAllocator();
    body.AddMember("status", "IN_PROGRESS", a);
    body.AddMember("output", json::clone(update, a), a);
    const std::string text = json::to_string(body);
    if (text.size() > max_post_bytes_) {
      log::warn("progress update of " + std::to_string(text.size()) + " bytes dropped: over the " +
                    std::to_string(max_post_bytes_) + "-byte post limit",
                id_);
      return;
    }
    std::lock_guard lock(sink_mutex_);
    sink_.post_progress(text);
  }

  void request_refresh() override { refresh_.store(true); }
  bool refresh_requested() const { return refresh_.load(); }

 private:
  const json::Value& raw_;
  JobSink& sink_;
  std::stop_token stop_;
  std::size_t max_post_bytes_;
  std::mutex& sink_mutex_;
  std::string id_;
  const json::Value* input_ = nullptr;
  std::atomic<bool> refresh_{false};
};

// Turns yields into posts. Without coalescing each yield is posted by the handler's thread before
// yield() returns. With coalescing, a sender thread posts: string chunks arriving within the window
// of the first unsent one are merged (up to the post limit); other chunks go out as they are.
class StreamEmitter final : public Emitter {
 public:
  StreamEmitter(JobSink& sink, std::mutex& sink_mutex, std::stop_token stop,
                const JobRunConfig& config, const std::string& job_id)
      : sink_(sink), sink_mutex_(sink_mutex), stop_(std::move(stop)), config_(config),
        job_id_(job_id) {
    aggregate_.SetArray();
    if (config_.stream_coalesce.count() > 0) {
      sender_ = std::jthread([this](std::stop_token) { send_loop(); });
    }
  }
  ~StreamEmitter() override { finish(); }

  void yield(const json::Value& chunk) override {
    if (stop_.stop_requested()) return;
    if (auto why = failure()) throw std::runtime_error(*why);
    std::vector<std::string> bodies;
    if (!(chunk.IsString() && sender_.joinable())) {
      try {
        bodies = chunk_bodies(chunk, config_.max_post_bytes);
      } catch (const ChunkTooLarge& e) {
        fail(e.what());
        throw;
      }
    }
    if (config_.aggregate_stream) aggregate_.PushBack(json::clone(chunk, aggregate_.GetAllocator()), aggregate_.GetAllocator());
    if (!sender_.joinable()) {
      for (const auto& body : bodies) {
        if (stop_.stop_requested()) return;
        std::string error;
        {
          std::lock_guard lock(sink_mutex_);
          error = sink_.post_stream(body);
        }
        if (!error.empty()) {
          fail("stream chunk could not be delivered: " + error);
          throw std::runtime_error(*failure());
        }
      }
      return;
    }
    std::unique_lock lock(mutex_);
    // Backpressure: a handler far ahead of the network waits instead of buffering without bound.
    space_.wait(lock, [&] { return outbox_.size() < kMaxOutbox || !failure_.empty(); });
    if (chunk.IsString()) {
      add_text(std::string_view(chunk.GetString(), chunk.GetStringLength()));
    } else {
      move_pending_to_outbox();
      for (auto& body : bodies) outbox_.push_back(std::move(body));
    }
    work_.notify_one();
  }

  // Sends whatever is pending and stops the sender. Safe to call twice.
  void finish() {
    if (!sender_.joinable()) return;
    {
      std::lock_guard lock(mutex_);
      move_pending_to_outbox();
      done_ = true;
    }
    work_.notify_one();
    sender_.join();
  }

  std::optional<std::string> failure() const {
    std::lock_guard lock(mutex_);
    if (failure_.empty()) return std::nullopt;
    return failure_;
  }
  json::Document& aggregate() { return aggregate_; }

 private:
  static constexpr std::size_t kMaxOutbox = 64;

  void fail(const std::string& why) {
    std::lock_guard lock(mutex_);
    if (failure_.empty()) failure_ = why;
    space_.notify_all();
  }

  // Holds mutex_.
  void add_text(std::string_view text) {
    const std::size_t room = config_.max_post_bytes;
    const std::size_t text_size = json_string_size(text) - 2;
    if (!pending_.empty() && kOutputEnvelopeBytes + 2 + pending_size_ + text_size > room) {
      move_pending_to_outbox();
    }
    if (kOutputEnvelopeBytes + 2 + pending_size_ + text_size <= room) {
      if (pending_.empty()) pending_since_ = std::chrono::steady_clock::now();
      pending_ += text;
      pending_size_ += text_size;
      return;
    }
    auto pieces = split_text(text, room);
    for (std::size_t i = 0; i + 1 < pieces.size(); ++i) outbox_.push_back(text_body(pieces[i]));
    pending_ = std::string(pieces.back());
    pending_size_ = json_string_size(pending_) - 2;
    pending_since_ = std::chrono::steady_clock::now();
  }

  // Holds mutex_.
  void move_pending_to_outbox() {
    if (pending_.empty()) return;
    outbox_.push_back(text_body(pending_));
    pending_.clear();
    pending_size_ = 0;
  }

  void send_loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      if (outbox_.empty() && !pending_.empty()) {
        const auto due = pending_since_ + config_.stream_coalesce;
        work_.wait_until(lock, due, [&] { return !outbox_.empty() || done_; });
        if (outbox_.empty() && std::chrono::steady_clock::now() >= due) move_pending_to_outbox();
      } else if (outbox_.empty()) {
        work_.wait(lock, [&] { return !outbox_.empty() || !pending_.empty() || done_; });
      }
      if (outbox_.empty()) {
        if (done_ && pending_.empty()) return;
        continue;
      }
      std::string body = std::move(outbox_.front());
      outbox_.pop_front();
      space_.notify_all();
      if (!failure_.empty() || stop_.stop_requested()) continue;  // drain without posting
      lock.unlock();
      std::string error;
      {
        std::lock_guard sink_lock(sink_mutex_);
        error = sink_.post_stream(body);
      }
      lock.lock();
      if (!error.empty() && failure_.empty()) {
        failure_ = "stream chunk could not be delivered: " + error;
        log::error(failure_, job_id_);
        space_.notify_all();
      }
    }
  }

  JobSink& sink_;
  std::mutex& sink_mutex_;
  std::stop_token stop_;
  const JobRunConfig& config_;
  const std::string& job_id_;
  json::Document aggregate_;

  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable space_;
  std::deque<std::string> outbox_;
  std::string pending_;
  std::size_t pending_size_ = 0;  // escaped size of pending_, quotes excluded
  std::chrono::steady_clock::time_point pending_since_{};
  bool done_ = false;
  std::string failure_;
  std::jthread sender_;  // last: joined before the members it uses are destroyed
};

}  // namespace

std::string error_result_body(std::string_view message) {
  json::Document body;
  body.SetObject();
  auto& a = body.GetAllocator();
  body.AddMember("error", json::string_value(message, a), a);
  return json::to_string(body);
}

JobOutcome run_job(Handler& handler, const json::Value& job, JobSink& sink, std::stop_token stop,
                   const JobRunConfig& config) {
  JobOutcome outcome;
  outcome.is_stream = handler.streams();
  std::mutex sink_mutex;
  RunningJob running(job, sink, stop, config.max_post_bytes, sink_mutex);
  StreamEmitter emitter(sink, sink_mutex, stop, config, running.id());

  json::Document body;
  body.SetObject();
  auto& a = body.GetAllocator();
  try {
    Output output = handler.execute(running, emitter);
    emitter.finish();
    if (auto why = emitter.failure()) {
      body.AddMember("error", json::string_value(*why, a), a);
    } else if (output.is_error()) {
      body.AddMember("error", json::string_value(output.error_message(), a), a);
      const auto& extra = output.value();
      if (!extra.IsNull() && !(extra.IsObject() && extra.MemberCount() == 0)) {
        body.AddMember("output", json::clone(extra, a), a);
      }
    } else if (outcome.is_stream) {
      json::Value chunks(rapidjson::kArrayType);
      if (config.aggregate_stream) chunks = json::clone(emitter.aggregate(), a);  // iterative copy
      body.AddMember("output", chunks, a);
    } else {
      body.AddMember("output", json::clone(output.value(), a), a);
    }
  } catch (...) {
    emitter.finish();
    if (auto why = emitter.failure()) {
      // The handler let the stream's own error escape: report that, it says what went wrong.
      body.AddMember("error", json::string_value(*why, a), a);
    } else {
      const std::string report = current_exception_report(config.hostname, config.worker_id);
      log::error("handler raised: " + report, running.id());
      body.AddMember("error", json::string_value(report, a), a);
    }
  }
  if (stop.stop_requested()) {
    outcome.stopped = true;
    return outcome;
  }
  outcome.ok = !body.HasMember("error");
  if (running.refresh_requested()) body.AddMember("stopPod", true, a);
  outcome.body = json::to_string(body);
  return outcome;
}

}  // namespace podworker::worker

#include "job_run.h"

#include <atomic>

#include "error_report.h"
#include "podworker/log.h"
#include "progress_sender.h"
#include "stream_sender.h"

namespace podworker::worker {
namespace {

class RunningJob final : public Job {
 public:
  RunningJob(const json::Value& raw, JobSink& sink, std::stop_token stop, std::size_t max_post_bytes)
      : raw_(raw), stop_(stop), max_post_bytes_(max_post_bytes), progress_(sink, std::move(stop)) {
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
    std::string text = json::to_string(body);
    if (text.size() > max_post_bytes_) {
      log::warn("progress update of " + std::to_string(text.size()) + " bytes dropped: over the " +
                    std::to_string(max_post_bytes_) + "-byte post limit",
                id_);
      return;
    }
    progress_.post(std::move(text));
  }

  void request_refresh() override { refresh_.store(true); }
  bool refresh_requested() const { return refresh_.load(); }
  // Before the result is posted: no progress update may follow it.
  void finish_progress() { progress_.finish(); }

 private:
  const json::Value& raw_;
  std::stop_token stop_;
  std::size_t max_post_bytes_;
  std::string id_;
  const json::Value* input_ = nullptr;
  std::atomic<bool> refresh_{false};
  ProgressSender progress_;  // last: its thread ends before the members above go
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
  RunningJob running(job, sink, stop, config.max_post_bytes);
  StreamSender emitter(sink, handler, stop,
                       {config.max_post_bytes, config.stream_buffer_bytes, config.aggregate_stream},
                       running.id());

  json::Document body;
  body.SetObject();
  auto& a = body.GetAllocator();
  try {
    Output output = handler.execute(running, emitter);
    emitter.finish();
    running.finish_progress();
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
    running.finish_progress();
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

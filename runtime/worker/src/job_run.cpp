#include "job_run.h"

#include <atomic>

#include "deadline_watch.h"
#include "error_report.h"
#include "podworker/log.h"
#include "progress_sender.h"
#include "stream_sender.h"

namespace podworker::worker {
namespace {

// The job's own time limit: its policy.executionTimeout (ms) when the job object carries one,
// else the worker's.
std::optional<std::chrono::milliseconds> job_time_limit(const json::Value& raw,
                                                        const JobRunConfig& config) {
  if (const json::Value* policy = json::find(raw, "policy");
      policy != nullptr && policy->IsObject()) {
    const json::Value* t = json::find(*policy, "executionTimeout");
    if (t != nullptr && t->IsNumber() && t->GetDouble() > 0 && t->GetDouble() < 1e12) {
      return std::chrono::milliseconds(static_cast<long long>(t->GetDouble()));
    }
  }
  return config.job_timeout;
}

class RunningJob final : public Job {
 public:
  RunningJob(const json::Value& raw, JobSink& sink, const JobControl& control,
             std::size_t max_post_bytes,
             std::optional<std::chrono::steady_clock::time_point> deadline)
      : raw_(raw),
        control_(control),
        stop_(control.token()),
        max_post_bytes_(max_post_bytes),
        deadline_(deadline),
        progress_(sink, control.token()) {
    id_ = json::get_string(raw_, "id");
    input_ = json::find(raw_, "input");
    const json::Value* retries = json::find(raw_, "retries");
    if (retries != nullptr && retries->IsInt() && retries->GetInt() > 0)
      retries_ = retries->GetInt();
  }

  const std::string& id() const override { return id_; }
  const json::Value& input() const override { return *input_; }
  const json::Value& raw() const override { return raw_; }
  std::stop_token stop_token() const override { return stop_; }
  StopReason stop_reason() const override { return control_.reason(); }
  std::optional<std::chrono::steady_clock::time_point> deadline() const override {
    return deadline_;
  }
  int retry_count() const override { return retries_; }

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
  const JobControl& control_;
  std::stop_token stop_;
  std::size_t max_post_bytes_;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  int retries_ = 0;
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

JobOutcome run_job(Handler& handler, const json::Value& job, JobSink& sink, JobControl& control,
                   const JobRunConfig& config) {
  JobOutcome outcome;
  const auto limit = job_time_limit(job, config);
  std::optional<std::chrono::steady_clock::time_point> deadline;
  if (limit) deadline = std::chrono::steady_clock::now() + *limit;
  const std::stop_token stop = control.token();
  RunningJob running(job, sink, control, config.max_post_bytes, deadline);
  StreamSender emitter(sink, handler, stop,
                       {config.max_post_bytes, config.stream_buffer_bytes,
                        config.aggregate_stream || config.aggregate_without_summary},
                       running.id());
  // A run without the worker's watch (a direct caller) gets one of its own for this job.
  std::optional<DeadlineWatch> own_watch;
  std::optional<DeadlineWatch::Entry> timer;
  if (deadline) {
    DeadlineWatch* watch = config.deadlines;
    if (watch == nullptr) watch = &own_watch.emplace();
    timer.emplace(watch->add(control, *deadline));
  }

  json::Document body;
  body.SetObject();
  auto& a = body.GetAllocator();
  try {
    Output output = handler.execute(running, emitter);
    timer.reset();  // finished in time: a deadline passing from here on changes nothing
    emitter.finish();
    running.finish_progress();
    // Decided per job: a job that yielded is a stream, whatever streams() says.
    outcome.is_stream = handler.streams() || emitter.stats().chunks > 0;
    if (auto why = emitter.failure()) {
      body.AddMember("error", json::string_value(*why, a), a);
    } else if (output.is_error()) {
      if (!stop.stop_requested())
        log::error("handler returned an error: " + output.error_message(), running.id());
      body.AddMember("error", json::string_value(output.error_message(), a), a);
      const auto& extra = output.value();
      if (!extra.IsNull() && !(extra.IsObject() && extra.MemberCount() == 0)) {
        body.AddMember("output", json::clone(extra, a), a);
      }
    } else if (outcome.is_stream) {
      // The chunks (aggregate), else the handler's summary, else the protocol's empty list.
      json::Value result(rapidjson::kArrayType);
      if (config.aggregate_stream) {
        result = json::clone(emitter.aggregate(), a);  // iterative copy
      } else if (!output.value().IsNull()) {
        result = json::clone(output.value(), a);
      } else if (config.aggregate_without_summary) {
        result = json::clone(emitter.aggregate(), a);
      }
      body.AddMember("output", result, a);
    } else {
      body.AddMember("output", json::clone(output.value(), a), a);
    }
  } catch (const InputError& e) {
    // The caller's mistake, said by the handler in the caller's terms: no traceback.
    timer.reset();
    emitter.finish();
    running.finish_progress();
    outcome.is_stream = handler.streams() || emitter.stats().chunks > 0;
    log::info(std::string("input refused: ") + e.what(), running.id());
    body.AddMember("error", json::string_value(e.what(), a), a);
  } catch (...) {
    timer.reset();
    emitter.finish();
    running.finish_progress();
    outcome.is_stream = handler.streams() || emitter.stats().chunks > 0;
    if (auto why = emitter.failure()) {
      // The handler let the stream's own error escape: report that, it says what went wrong.
      body.AddMember("error", json::string_value(*why, a), a);
    } else {
      const std::string report = current_exception_report(config.hostname, config.worker_id);
      log::error("handler raised: " + report, running.id());
      body.AddMember("error", json::string_value(report, a), a);
    }
  }
  if (control.reason() == StopReason::timed_out) {
    // Whatever the handler made of its stop, the job failed: say so, with the limit.
    const std::string why =
        "job timed out: it ran past its " + std::to_string(limit->count()) + " ms limit";
    log::warn(why, running.id());
    outcome.timed_out = true;
    outcome.body = error_result_body(why);
    return outcome;
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

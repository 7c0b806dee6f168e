// --test-input: one job through the handler with no server, like the SDK's local test mode.
#include "job_run.h"
#include "podworker/log.h"
#include "podworker/worker.h"

namespace podworker {
namespace {

class LocalSink final : public worker::JobSink {
 public:
  explicit LocalSink(std::string id) : id_(std::move(id)) {}
  std::string post_stream(const std::string& body) override {
    log::debug("stream: " + body.substr(0, 500), id_);
    return {};
  }
  void post_progress(const std::string& body) override { log::info("progress: " + body, id_); }

 private:
  std::string id_;
};

}  // namespace

LocalResult run_local_job(Handler& handler, const json::Value& job, const WorkerOptions& options) {
  LocalResult result;
  json::Document doc = json::copy(job);
  auto& a = doc.GetAllocator();
  // The endpoint's own rule (a /run body's "input" must be an object), so a job that passes
  // locally is one the endpoint accepts.
  const json::Value* input = doc.IsObject() ? json::find(doc, "input") : nullptr;
  if (input == nullptr || !input->IsObject()) {
    result.body.SetObject();
    const std::string_view why = input == nullptr
                                     ? "test input must be a JSON object with an \"input\" member"
                                     : "\"input\" must be a JSON object";
    result.body.AddMember("error", json::string_value(why, result.body.GetAllocator()),
                          result.body.GetAllocator());
    return result;
  }
  if (!doc.HasMember("id")) doc.AddMember("id", "local_test", a);
  worker::JobRunConfig config;
  config.max_post_bytes = options.max_post_bytes;
  // As the endpoint would answer /runsync: the chunks with --return-aggregate-stream, else the
  // stream's summary; a stream without one prints its chunks rather than an empty list.
  config.aggregate_stream = options.return_aggregate_stream;
  config.aggregate_without_summary = true;
  config.hostname = options.hostname.empty() ? "unknown" : options.hostname;
  config.worker_id = options.worker_id.empty() ? "local" : options.worker_id;
  config.job_timeout = options.job_timeout;
  LocalSink sink(json::get_string(doc, "id"));
  worker::JobControl control;  // stopped only by the job's deadline
  const auto outcome = worker::run_job(handler, doc, sink, control, config);
  try {
    result.body = json::parse(outcome.body, json::kNoSizeLimit, json::kMaxEnvelopedDepth);
    result.ok = outcome.ok;
  } catch (const JsonError& e) {
    // Only a handler's own output can be this deep; an endpoint would refuse it the same way.
    result.body.SetObject();
    result.body.AddMember(
        "error",
        json::string_value(std::string("handler output: ") + e.what(), result.body.GetAllocator()),
        result.body.GetAllocator());
    result.ok = false;
  }
  return result;
}

}  // namespace podworker

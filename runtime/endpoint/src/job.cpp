#include "job.h"

#include <algorithm>

#include "podworker/json.h"

namespace podworker::endpoint {

std::string_view status_name(JobStatus status) {
  switch (status) {
    case JobStatus::in_queue: return "IN_QUEUE";
    case JobStatus::in_progress: return "IN_PROGRESS";
    case JobStatus::completed: return "COMPLETED";
    case JobStatus::failed: return "FAILED";
    case JobStatus::cancelled: return "CANCELLED";
    case JobStatus::timed_out: return "TIMED_OUT";
  }
  return "UNKNOWN";
}

std::size_t queued_payload_bytes(const NewJob& job) {
  return job.input_json.size() + job.webhook.size() + job.s3_config_json.size();
}

namespace {

std::chrono::milliseconds policy_millis(const json::Value& policy, std::string_view key,
                                        std::chrono::milliseconds fallback, std::chrono::milliseconds lo,
                                        std::chrono::milliseconds hi) {
  const json::Value* v = json::find(policy, key);
  if (v == nullptr || v->IsNull()) return fallback;
  if (!v->IsNumber()) throw JsonError("\"policy." + std::string(key) + "\" must be a number of milliseconds");
  const double ms = v->GetDouble();
  if (!(ms >= 0)) throw JsonError("\"policy." + std::string(key) + "\" must not be negative");
  // Clamped rather than rejected, as RunPod documents ranges without an error for them.
  const double clamped = std::clamp(ms, static_cast<double>(lo.count()), static_cast<double>(hi.count()));
  return std::chrono::milliseconds(static_cast<std::int64_t>(clamped));
}

// A webhook is checked when the job is submitted, so a bad one is the client's 400 rather than a
// silent non-delivery later, and so only printable URL text ever reaches the logs.
bool webhook_url_ok(std::string_view url) {
  constexpr std::size_t kMaxWebhookBytes = 2048;
  if (url.size() > kMaxWebhookBytes) return false;
  if (!url.starts_with("http://") && !url.starts_with("https://")) return false;
  const std::size_t rest = url.find("://") + 3;
  if (rest == url.size()) return false;
  return std::all_of(url.begin(), url.end(), [](char c) { return c >= '!' && c <= '~'; });
}

}  // namespace

void parse_submission(std::string_view body, const PolicyLimits& limits, NewJob& job) {
  json::Document doc = json::parse(body);
  if (!doc.IsObject()) throw JsonError("the request body must be a JSON object");
  const json::Value* input = json::find(doc, "input");
  if (input == nullptr) throw JsonError("the request body must have an \"input\" member");
  if (!input->IsObject()) throw JsonError("\"input\" must be a JSON object");
  job.input_json = json::to_string(*input);
  job.webhook = json::get_string(doc, "webhook");
  if (!job.webhook.empty() && !webhook_url_ok(job.webhook)) {
    throw JsonError("\"webhook\" must be an http:// or https:// URL of printable ASCII, at most 2048 bytes");
  }
  if (const json::Value* s3 = json::find(doc, "s3Config"); s3 != nullptr && !s3->IsNull()) {
    if (!s3->IsObject()) throw JsonError("\"s3Config\" must be a JSON object");
    job.s3_config_json = json::to_string(*s3);
  }
  job.policy.execution_timeout = limits.execution_timeout_default;
  job.policy.ttl = limits.ttl_default;
  if (const json::Value* policy = json::find(doc, "policy"); policy != nullptr && !policy->IsNull()) {
    if (!policy->IsObject()) throw JsonError("\"policy\" must be a JSON object");
    job.policy.execution_timeout =
        policy_millis(*policy, "executionTimeout", limits.execution_timeout_default,
                      limits.execution_timeout_min, limits.execution_timeout_max);
    job.policy.ttl = policy_millis(*policy, "ttl", limits.ttl_default, limits.ttl_min, limits.ttl_max);
    job.policy.low_priority = json::get_bool(*policy, "lowPriority", false);
  }
}

// A worker's posts wrap the handler's output, which may be a client's input echoed back: allow
// the envelope's levels on top of the client limit.
WorkerResult parse_worker_result(std::string_view body) {
  json::Document doc = json::parse(body, json::kNoSizeLimit, json::kMaxEnvelopedDepth);
  if (!doc.IsObject()) throw JsonError("a job result must be a JSON object");
  WorkerResult result;
  const json::Value* out = json::find(doc, "output");
  if (out != nullptr) result.output_json = json::to_string(*out);
  // A status other than the ones a worker sends is a malformed post, not a success.
  std::string_view status;
  if (const json::Value* st = json::find(doc, "status"); st != nullptr && !st->IsNull()) {
    if (!st->IsString()) throw JsonError("\"status\" must be a string");
    status = std::string_view(st->GetString(), st->GetStringLength());
    if (status != "IN_PROGRESS" && status != "COMPLETED" && status != "FAILED") {
      throw JsonError("\"status\" must be IN_PROGRESS, COMPLETED or FAILED, not \"" + std::string(status) + "\"");
    }
  }
  if (status == "IN_PROGRESS") {
    result.kind = WorkerResult::Kind::progress;
    return result;
  }
  // `{}` stays a success: the SDK drops an output of {} before posting. Only the job's lease holder
  // gets this far (the store refuses everyone else).
  if (const json::Value* err = json::find(doc, "error"); err != nullptr && !err->IsNull()) {
    result.kind = WorkerResult::Kind::error;
    // The SDK sends a string (sometimes JSON encoded inside it); anything else is kept as JSON text.
    result.error = err->IsString() ? std::string(err->GetString(), err->GetStringLength()) : json::to_string(*err);
  }
  return result;
}

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

void write_raw(Writer& w, std::string_view json_text) {
  w.RawValue(json_text.data(), json_text.size(), rapidjson::kObjectType);
}

}  // namespace

std::string render_status(const JobRecord& job) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  if (job.delay_ms) {
    w.Key("delayTime");
    w.Int64(*job.delay_ms);
  }
  if (job.execution_ms) {
    w.Key("executionTime");
    w.Int64(*job.execution_ms);
  }
  if (job.error) {
    w.Key("error");
    write_string(w, *job.error);
  }
  w.Key("id");
  write_string(w, job.id);
  if (!job.output_json.empty()) {
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

std::string render_taken(const TakenJob& job) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("id");
  write_string(w, job.id);
  w.Key("input");
  write_raw(w, job.input_json);
  if (!job.s3_config_json.empty()) {
    w.Key("s3Config");
    write_raw(w, job.s3_config_json);
  }
  if (!job.webhook.empty()) {
    w.Key("webhook");
    write_string(w, job.webhook);
  }
  w.Key("policy");
  w.StartObject();
  w.Key("executionTimeout");
  w.Int64(job.policy.execution_timeout.count());
  w.Key("ttl");
  w.Int64(job.policy.ttl.count());
  w.Key("lowPriority");
  w.Bool(job.policy.low_priority);
  w.EndObject();
  w.Key("retries");
  w.Int(job.retries);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string parse_stream_chunk(std::string_view body) {
  json::Document doc = json::parse(body, json::kNoSizeLimit, json::kMaxEnvelopedDepth);
  if (const json::Value* out = json::find(doc, "output"); out != nullptr) return json::to_string(*out);
  return json::to_string(doc);
}

}  // namespace podworker::endpoint

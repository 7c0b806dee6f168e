#include "openai.h"

#include "podworker/chat_request.h"
#include "podworker/json.h"

namespace podworker::endpoint {

namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

std::string frame_error(std::string_view job_id, std::string_view status, std::string_view error) {
  if (status == "FAILED") {
    return openai_error_json(error.empty() ? "the handler failed" : job_error_message(error), "server_error", job_id);
  }
  if (status == "TIMED_OUT") {
    return openai_error_json("job " + std::string(job_id) + " exceeded its execution timeout", "timeout", job_id);
  }
  if (status == "CANCELLED") return openai_error_json("job " + std::string(job_id) + " was cancelled", "server_error", job_id);
  return openai_error_json("job " + std::string(job_id) + " ended as " + std::string(status), "server_error", job_id);
}

void write_model(Writer& w, std::string_view model, std::int64_t created) {
  w.StartObject();
  w.Key("id");
  write_string(w, model);
  w.Key("object");
  w.String("model");
  w.Key("created");
  w.Int64(created);
  w.Key("owned_by");
  w.String("podworker");
  w.EndObject();
}

}  // namespace

OpenAiRequest parse_openai_request(std::string_view body, const PolicyLimits& limits, std::string_view default_model,
                                   int max_context, std::string_view route) {
  if (route != kOpenAiChatRoute && route != kOpenAiCompletionsRoute) {
    throw std::invalid_argument("no OpenAI route " + std::string(route));
  }
  const chat::Form form = route == kOpenAiChatRoute ? chat::Form::openai : chat::Form::openai_completions;
  json::Document doc = json::parse(body);
  // Every value checked before a job exists, by the definition the handler checks with: a bad one
  // is the client's 400 (OpenAI clients do not retry those), never a failed job's 500 (they do).
  const chat::ChatRequest checked = chat::parse_chat_request(doc, form, {max_context});
  OpenAiRequest req;
  req.stream = checked.stream;
  if (checked.model.empty()) {
    auto& a = doc.GetAllocator();
    doc.RemoveMember("model");
    doc.AddMember("model", json::string_value(default_model, a), a);
  }
  const std::string request_json = json::to_string(doc);
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("openai_route");
  write_string(w, route);
  w.Key("openai_input");
  w.RawValue(request_json.data(), request_json.size(), rapidjson::kObjectType);
  w.EndObject();
  req.job.input_json.assign(buffer.GetString(), buffer.GetSize());
  req.job.policy.execution_timeout = limits.execution_timeout_default;
  req.job.policy.ttl = limits.ttl_default;
  return req;
}

std::string openai_error_json(std::string_view message, std::string_view type, std::string_view job_id,
                              std::string_view param, std::string_view code) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("message");
  write_string(w, message);
  w.Key("type");
  write_string(w, type);
  // OpenAI's shape always has both; null when the error is not about one field.
  w.Key("param");
  if (param.empty()) {
    w.Null();
  } else {
    write_string(w, param);
  }
  w.Key("code");
  if (code.empty()) {
    w.Null();
  } else {
    write_string(w, code);
  }
  if (!job_id.empty()) {
    w.Key("job_id");
    write_string(w, job_id);
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string openai_request_error_json(const std::exception& e) {
  if (const auto* bad = dynamic_cast<const chat::ChatRequestError*>(&e)) {
    return openai_error_json(bad->what(), "invalid_request_error", {}, bad->param(), bad->code());
  }
  return openai_error_json(e.what(), "invalid_request_error");
}

std::string_view openai_error_type(int http_status) {
  switch (http_status) {
    case 400:
    case 405:
    case 413: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    case 504: return "timeout";
    default: return "server_error";
  }
}

std::string openai_shaped_error(int http_status, const std::string& body) {
  try {
    const json::Document doc = json::parse(body, json::kNoSizeLimit, json::kMaxEnvelopedDepth);
    if (!doc.IsObject()) return body;
    const json::Value* error = json::find(doc, "error");
    if (error == nullptr || !error->IsString()) return body;
    return openai_error_json({error->GetString(), error->GetStringLength()}, openai_error_type(http_status));
  } catch (const JsonError&) {
    return body;
  }
}

void append_sse_chunk(std::string& out, std::string_view chunk_json) {
  // Chunk text comes from our own store, written by json::to_string: it is valid JSON.
  const json::Document chunk =
      json::parse(chunk_json, json::kNoSizeLimit, json::kMaxEnvelopedDepth);
  if (chunk.IsString()) {
    out.append(chunk.GetString(), chunk.GetStringLength());
    return;
  }
  out += "data: ";
  out += chunk_json;
  out += "\n\n";
}

std::string job_error_message(std::string_view error) {
  try {
    const json::Document doc = json::parse(error, json::kNoSizeLimit, json::kMaxEnvelopedDepth);
    if (doc.IsObject()) {
      const std::string message = json::get_string(doc, "error_message");
      if (!message.empty()) {
        const std::string type = json::get_string(doc, "error_type");
        return type.empty() ? message : type + ": " + message;
      }
    }
  } catch (const JsonError&) {
  }
  return std::string(error);
}

OpenAiResponse openai_response(std::string_view job_id, std::string_view status_json,
                               const std::vector<std::string>& chunks) {
  const json::Document st = json::parse(status_json, json::kNoSizeLimit, json::kMaxEnvelopedDepth);
  const std::string status = json::get_string(st, "status");
  if (status != "COMPLETED") {
    return {status == "TIMED_OUT" ? 504 : 500, frame_error(job_id, status, json::get_string(st, "error"))};
  }
  const json::Value* output = json::find(st, "output");
  if (output != nullptr && !output->IsNull() && !output->IsArray()) return {200, json::to_string(*output)};
  // A generator handler's result arrives as its stream: the aggregated list, or the chunks alone.
  if (output != nullptr && output->IsArray() && output->Size() == 1) return {200, json::to_string((*output)[0])};
  if (chunks.size() == 1) return {200, chunks.front()};
  const std::string why = chunks.empty() ? "the handler returned no output"
                                         : "the handler streamed " + std::to_string(chunks.size()) +
                                               " chunks for a request without \"stream\": true";
  return {500, openai_error_json(why, "server_error", job_id)};
}

std::string openai_stream_tail(std::string_view job_id, std::string_view status_json, bool streamed_any) {
  const json::Document st = json::parse(status_json, json::kNoSizeLimit, json::kMaxEnvelopedDepth);
  const std::string status = json::get_string(st, "status");
  if (status != "COMPLETED") return "data: " + frame_error(job_id, status, json::get_string(st, "error")) + "\n\n";
  std::string out;
  const json::Value* output = json::find(st, "output");
  // A handler that returned its result instead of streaming it: send that, so the client gets it.
  if (streamed_any || output == nullptr || output->IsNull()) return out;
  if (output->IsArray()) {
    for (const json::Value& item : output->GetArray()) append_sse_chunk(out, json::to_string(item));
  } else {
    append_sse_chunk(out, json::to_string(*output));
  }
  return out;
}

std::string openai_models_json(std::string_view model, std::int64_t created) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("object");
  w.String("list");
  w.Key("data");
  w.StartArray();
  write_model(w, model, created);
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

std::string openai_model_json(std::string_view model, std::int64_t created) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  write_model(w, model, created);
  return std::string(buffer.GetString(), buffer.GetSize());
}

}  // namespace podworker::endpoint

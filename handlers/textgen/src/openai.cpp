#include "openai.h"

namespace podworker::handlers::textgen {

namespace {

void add_ids(json::Document& d, const OpenAiIds& ids, const char* object) {
  auto& a = d.GetAllocator();
  d.AddMember("id", json::string_value(ids.id, a), a);
  d.AddMember("object", json::Value(object, a), a);
  d.AddMember("created", ids.created, a);
  d.AddMember("model", json::string_value(ids.model, a), a);
}

json::Value usage_value(int prompt_tokens, int completion_tokens, json::Document::AllocatorType& a) {
  json::Value usage(rapidjson::kObjectType);
  usage.AddMember("prompt_tokens", prompt_tokens, a);
  usage.AddMember("completion_tokens", completion_tokens, a);
  usage.AddMember("total_tokens", prompt_tokens + completion_tokens, a);
  return usage;
}

}  // namespace

std::string openai_chunk_event(const OpenAiIds& ids, std::string_view content, bool role, std::string_view finish_reason) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  add_ids(d, ids, "chat.completion.chunk");
  json::Value delta(rapidjson::kObjectType);
  if (role) delta.AddMember("role", "assistant", a);
  if (!content.empty() || role) delta.AddMember("content", json::string_value(content, a), a);
  json::Value choice(rapidjson::kObjectType);
  choice.AddMember("index", 0, a);
  choice.AddMember("delta", delta, a);
  if (finish_reason.empty()) {
    choice.AddMember("finish_reason", json::Value(), a);
  } else {
    choice.AddMember("finish_reason", json::string_value(finish_reason, a), a);
  }
  json::Value choices(rapidjson::kArrayType);
  choices.PushBack(choice, a);
  d.AddMember("choices", choices, a);
  if (ids.include_usage) d.AddMember("usage", json::Value(), a);
  return "data: " + json::to_string(d) + "\n\n";
}

std::string openai_usage_event(const OpenAiIds& ids, int prompt_tokens, int completion_tokens) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  add_ids(d, ids, "chat.completion.chunk");
  d.AddMember("choices", json::Value(rapidjson::kArrayType), a);
  d.AddMember("usage", usage_value(prompt_tokens, completion_tokens, a), a);
  return "data: " + json::to_string(d) + "\n\n";
}

std::string openai_done_event() { return "data: [DONE]\n\n"; }

json::Document openai_completion(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                                 int prompt_tokens, int completion_tokens) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  add_ids(d, ids, "chat.completion");
  json::Value message(rapidjson::kObjectType);
  message.AddMember("role", "assistant", a);
  message.AddMember("content", json::string_value(text, a), a);
  json::Value choice(rapidjson::kObjectType);
  choice.AddMember("index", 0, a);
  choice.AddMember("message", message, a);
  choice.AddMember("finish_reason", json::string_value(finish_reason, a), a);
  json::Value choices(rapidjson::kArrayType);
  choices.PushBack(choice, a);
  d.AddMember("choices", choices, a);
  d.AddMember("usage", usage_value(prompt_tokens, completion_tokens, a), a);
  return d;
}

}  // namespace podworker::handlers::textgen

#include "openai.h"

#include <charconv>

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

void add_logprobs(json::Value& choice, const OpenAiIds& ids, const json::Value* logprobs,
                  json::Document::AllocatorType& a) {
  if (!ids.logprobs) return;
  if (logprobs == nullptr) {
    choice.AddMember("logprobs", json::Value(), a);
  } else {
    choice.AddMember("logprobs", json::Value(*logprobs, a), a);
  }
}

void add_finish_reason(json::Value& choice, std::string_view finish_reason, json::Document::AllocatorType& a) {
  if (finish_reason.empty()) {
    choice.AddMember("finish_reason", json::Value(), a);
  } else {
    choice.AddMember("finish_reason", json::string_value(finish_reason, a), a);
  }
}

// A logprob as the double nearest its shortest decimal form (at most 9 digits): that number reads
// back exactly even through a parser without full precision, so a value relayed by the endpoint
// (parsed and written again) is the value streamed.
double logprob_number(float f) {
  char buf[32];
  const auto end = std::to_chars(buf, buf + sizeof buf, f).ptr;
  double d = 0;
  std::from_chars(buf, end, d);
  return d;
}

json::Value byte_array(std::string_view b, json::Document::AllocatorType& a) {
  json::Value out(rapidjson::kArrayType);
  for (unsigned char c : b) out.PushBack(static_cast<unsigned>(c), a);
  return out;
}

// {"token", "logprob", "bytes"}: the JSON writer turns bytes that are not UTF-8 into U+FFFD.
json::Value token_entry(std::int32_t id, float logprob, const TokenBytes& bytes, json::Document::AllocatorType& a) {
  const std::string b = bytes(id);
  json::Value e(rapidjson::kObjectType);
  e.AddMember("token", json::string_value(b, a), a);
  e.AddMember("logprob", logprob_number(logprob), a);
  e.AddMember("bytes", byte_array(b, a), a);
  return e;
}

json::Document text_completion_object(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                                      const json::Value* logprobs) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  add_ids(d, ids, "text_completion");
  json::Value choice(rapidjson::kObjectType);
  choice.AddMember("text", json::string_value(text, a), a);
  choice.AddMember("index", 0, a);
  // Legacy completions always carry the key; null when not asked for.
  if (logprobs == nullptr) {
    choice.AddMember("logprobs", json::Value(), a);
  } else {
    choice.AddMember("logprobs", json::Value(*logprobs, a), a);
  }
  add_finish_reason(choice, finish_reason, a);
  json::Value choices(rapidjson::kArrayType);
  choices.PushBack(choice, a);
  d.AddMember("choices", choices, a);
  return d;
}

}  // namespace

json::Value chat_logprobs(std::span<const llm::SampledToken> tokens, const TokenBytes& bytes,
                          json::Document::AllocatorType& a) {
  json::Value content(rapidjson::kArrayType);
  for (const llm::SampledToken& t : tokens) {
    json::Value e = token_entry(t.token, t.logprob, bytes, a);
    json::Value top(rapidjson::kArrayType);
    for (const llm::TokenLogprob& alt : t.top) top.PushBack(token_entry(alt.token, alt.logprob, bytes, a), a);
    e.AddMember("top_logprobs", top, a);
    content.PushBack(e, a);
  }
  json::Value out(rapidjson::kObjectType);
  out.AddMember("content", content, a);
  out.AddMember("refusal", json::Value(), a);
  return out;
}

json::Value completion_logprobs(std::span<const llm::SampledToken> tokens, const TokenBytes& bytes,
                                std::size_t text_offset, json::Document::AllocatorType& a) {
  json::Value text(rapidjson::kArrayType), lps(rapidjson::kArrayType), tops(rapidjson::kArrayType),
      offsets(rapidjson::kArrayType);
  for (const llm::SampledToken& t : tokens) {
    const std::string b = bytes(t.token);
    text.PushBack(json::string_value(b, a), a);
    lps.PushBack(logprob_number(t.logprob), a);
    json::Value top(rapidjson::kObjectType);
    for (const llm::TokenLogprob& alt : t.top) {
      // Keys are token texts; two tokens that render alike keep the first (the more likely).
      const std::string key = bytes(alt.token);
      if (json::find(top, key) == nullptr) {
        json::Value k = json::string_value(key, a);
        json::Value v(logprob_number(alt.logprob));
        top.AddMember(k, v, a);
      }
    }
    tops.PushBack(top, a);
    offsets.PushBack(static_cast<std::uint64_t>(text_offset), a);
    text_offset += b.size();
  }
  json::Value out(rapidjson::kObjectType);
  out.AddMember("tokens", text, a);
  out.AddMember("token_logprobs", lps, a);
  out.AddMember("top_logprobs", tops, a);
  out.AddMember("text_offset", offsets, a);
  return out;
}

std::string text_completion_event(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                                  const json::Value* logprobs) {
  json::Document d = text_completion_object(ids, text, finish_reason, logprobs);
  if (ids.include_usage) d.AddMember("usage", json::Value(), d.GetAllocator());
  return "data: " + json::to_string(d) + "\n\n";
}

json::Document text_completion(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                               int prompt_tokens, int completion_tokens, const json::Value* logprobs) {
  json::Document d = text_completion_object(ids, text, finish_reason, logprobs);
  d.AddMember("usage", usage_value(prompt_tokens, completion_tokens, d.GetAllocator()), d.GetAllocator());
  return d;
}

std::string openai_chunk_event(const OpenAiIds& ids, std::string_view content, bool role, std::string_view finish_reason,
                               const json::Value* logprobs) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  add_ids(d, ids, "chat.completion.chunk");
  json::Value delta(rapidjson::kObjectType);
  if (role) delta.AddMember("role", "assistant", a);
  if (!content.empty() || role) delta.AddMember("content", json::string_value(content, a), a);
  json::Value choice(rapidjson::kObjectType);
  choice.AddMember("index", 0, a);
  choice.AddMember("delta", delta, a);
  add_logprobs(choice, ids, logprobs, a);
  add_finish_reason(choice, finish_reason, a);
  json::Value choices(rapidjson::kArrayType);
  choices.PushBack(choice, a);
  d.AddMember("choices", choices, a);
  if (ids.include_usage) d.AddMember("usage", json::Value(), a);
  return "data: " + json::to_string(d) + "\n\n";
}

std::string openai_usage_event(const OpenAiIds& ids, int prompt_tokens, int completion_tokens) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  add_ids(d, ids, ids.completions ? "text_completion" : "chat.completion.chunk");
  d.AddMember("choices", json::Value(rapidjson::kArrayType), a);
  d.AddMember("usage", usage_value(prompt_tokens, completion_tokens, a), a);
  return "data: " + json::to_string(d) + "\n\n";
}

std::string openai_done_event() { return "data: [DONE]\n\n"; }

json::Document openai_completion(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                                 int prompt_tokens, int completion_tokens, const json::Value* logprobs) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  add_ids(d, ids, "chat.completion");
  json::Value message(rapidjson::kObjectType);
  message.AddMember("role", "assistant", a);
  message.AddMember("content", json::string_value(text, a), a);
  json::Value choice(rapidjson::kObjectType);
  choice.AddMember("index", 0, a);
  choice.AddMember("message", message, a);
  add_logprobs(choice, ids, logprobs, a);
  choice.AddMember("finish_reason", json::string_value(finish_reason, a), a);
  json::Value choices(rapidjson::kArrayType);
  choices.PushBack(choice, a);
  d.AddMember("choices", choices, a);
  d.AddMember("usage", usage_value(prompt_tokens, completion_tokens, a), a);
  return d;
}

}  // namespace podworker::handlers::textgen

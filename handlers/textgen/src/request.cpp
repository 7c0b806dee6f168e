#include "request.h"

#include <random>
#include <stdexcept>

namespace podworker::handlers::textgen {

namespace {

[[noreturn]] void bad(const std::string& message) { throw std::invalid_argument(message); }

const json::Value* member(const json::Value& o, const char* key) {
  auto it = o.FindMember(key);
  return it == o.MemberEnd() || it->value.IsNull() ? nullptr : &it->value;
}

std::string string_field(const json::Value& o, const char* key, std::size_t max_bytes) {
  const json::Value* v = member(o, key);
  if (v == nullptr) return {};
  if (!v->IsString()) bad(std::string("\"") + key + "\" must be a string");
  if (v->GetStringLength() > max_bytes) bad(std::string("\"") + key + "\" is longer than " + std::to_string(max_bytes) + " bytes");
  return std::string(v->GetString(), v->GetStringLength());
}

double number_field(const json::Value& o, const char* key, double fallback, double lo, double hi) {
  const json::Value* v = member(o, key);
  if (v == nullptr) return fallback;
  if (!v->IsNumber()) bad(std::string("\"") + key + "\" must be a number");
  const double d = v->GetDouble();
  if (!(d >= lo && d <= hi)) bad(std::string("\"") + key + "\" must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return d;
}

std::int64_t int_field(const json::Value& o, const char* key, std::int64_t fallback, std::int64_t lo, std::int64_t hi) {
  const json::Value* v = member(o, key);
  if (v == nullptr) return fallback;
  if (!v->IsInt64()) bad(std::string("\"") + key + "\" must be an integer");
  const std::int64_t i = v->GetInt64();
  if (i < lo || i > hi) bad(std::string("\"") + key + "\" must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return i;
}

std::vector<std::string> stop_field(const json::Value& o) {
  const json::Value* v = member(o, "stop");
  std::vector<std::string> out;
  if (v == nullptr) return out;
  const auto add = [&](const json::Value& s) {
    if (!s.IsString()) bad("\"stop\" must be a string or an array of strings");
    if (s.GetStringLength() == 0 || s.GetStringLength() > 256) bad("each stop string must have 1 to 256 bytes");
    out.emplace_back(s.GetString(), s.GetStringLength());
  };
  if (v->IsArray()) {
    if (v->Size() > 16) bad("\"stop\" holds at most 16 strings");
    for (const auto& s : v->GetArray()) add(s);
  } else {
    add(*v);
  }
  return out;
}

std::string chat_prompt(const json::Value& messages) {
  if (!messages.IsArray() || messages.Empty()) bad("\"messages\" must be a non-empty array");
  if (messages.Size() > 1024) bad("\"messages\" holds at most 1024 messages");
  std::vector<model::Tokenizer::Message> list;
  std::size_t bytes = 0;
  for (const auto& m : messages.GetArray()) {
    if (!m.IsObject()) bad("each message must be an object with \"role\" and \"content\"");
    model::Tokenizer::Message msg{string_field(m, "role", 64), {}};
    const json::Value* content = member(m, "content");
    if (content != nullptr && content->IsArray()) {
      // OpenAI content parts: only text parts are understood.
      for (const auto& part : content->GetArray()) {
        if (!part.IsObject() || string_field(part, "type", 32) != "text") bad("only text content parts are supported");
        msg.content += string_field(part, "text", kMaxPromptBytes);
      }
    } else {
      msg.content = string_field(m, "content", kMaxPromptBytes);
    }
    if (msg.role.empty()) bad("each message needs a \"role\"");
    bytes += msg.content.size();
    if (bytes > kMaxPromptBytes) bad("the messages are longer than " + std::to_string(kMaxPromptBytes) + " bytes");
    list.push_back(std::move(msg));
  }
  return model::Tokenizer::apply_chat_template(list);
}

std::uint64_t seed_field(const json::Value& o) {
  const json::Value* v = member(o, "seed");
  if (v == nullptr) return std::random_device{}();
  if (!v->IsInt64() || v->GetInt64() < 0) bad("\"seed\" must be a non-negative integer");
  return static_cast<std::uint64_t>(v->GetInt64());
}

}  // namespace

Request parse_native(const json::Value& input) {
  if (!input.IsObject()) bad("input must be an object with \"prompt\" or \"messages\"");
  Request r;
  const json::Value* prompt = member(input, "prompt");
  const json::Value* messages = member(input, "messages");
  if ((prompt == nullptr) == (messages == nullptr)) bad("input needs exactly one of \"prompt\" and \"messages\"");
  if (prompt != nullptr) {
    r.prompt = string_field(input, "prompt", kMaxPromptBytes);
    if (r.prompt.empty()) bad("\"prompt\" is empty");
  } else {
    r.prompt = chat_prompt(*messages);
  }
  r.max_tokens = static_cast<int>(int_field(input, "max_tokens", 256, 1, kMaxTokensLimit));
  r.sampling.temperature = static_cast<float>(number_field(input, "temperature", 0.7, 0.0, 2.0));
  r.sampling.top_k = static_cast<int>(int_field(input, "top_k", 40, 0, 1 << 20));
  r.sampling.top_p = static_cast<float>(number_field(input, "top_p", 0.95, 0.0, 1.0));
  r.sampling.seed = seed_field(input);
  r.stop = stop_field(input);
  return r;
}

Request parse_openai(const json::Value& body) {
  if (!body.IsObject()) bad("\"openai_input\" must be an object");
  Request r;
  r.openai = true;
  const json::Value* messages = member(body, "messages");
  if (messages == nullptr) bad("\"messages\" is required");
  r.prompt = chat_prompt(*messages);
  r.model_name = string_field(body, "model", 256);
  const std::int64_t max_tokens = member(body, "max_completion_tokens") != nullptr
                                      ? int_field(body, "max_completion_tokens", 256, 1, kMaxTokensLimit)
                                      : int_field(body, "max_tokens", 256, 1, kMaxTokensLimit);
  r.max_tokens = static_cast<int>(max_tokens);
  r.sampling.temperature = static_cast<float>(number_field(body, "temperature", 1.0, 0.0, 2.0));
  r.sampling.top_p = static_cast<float>(number_field(body, "top_p", 1.0, 0.0, 1.0));
  r.sampling.top_k = static_cast<int>(int_field(body, "top_k", 0, 0, 1 << 20));
  r.sampling.seed = seed_field(body);
  r.stop = stop_field(body);
  if (const json::Value* n = member(body, "n"); n != nullptr && !(n->IsInt() && n->GetInt() == 1)) bad("only n = 1 is supported");
  if (const json::Value* s = member(body, "stream"); s != nullptr) {
    if (!s->IsBool()) bad("\"stream\" must be a boolean");
    r.stream = s->GetBool();
  }
  if (const json::Value* options = member(body, "stream_options"); options != nullptr) {
    if (!options->IsObject()) bad("\"stream_options\" must be an object");
    if (const json::Value* usage = member(*options, "include_usage"); usage != nullptr) {
      if (!usage->IsBool()) bad("\"stream_options.include_usage\" must be a boolean");
      // Only a stream has chunks to add it to; a plain completion always carries its usage.
      r.include_usage = usage->GetBool() && r.stream;
    }
  }
  return r;
}

}  // namespace podworker::handlers::textgen

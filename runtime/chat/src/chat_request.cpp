#include "podworker/chat_request.h"

#include <algorithm>
#include <cmath>

namespace podworker::chat {

namespace {

[[noreturn]] void fail(const std::string& message, std::string param, std::string code) {
  throw ChatRequestError(message, std::move(param), std::move(code));
}

std::string quoted(std::string_view name) {
  return "\"" + std::string(name) + "\"";
}

// A bound as a reader expects it: 2, 0.5, 2048 (never 2.000000).
std::string number_text(double d) {
  json::Value v(d);
  if (d == std::floor(d) && std::fabs(d) <= kMaxExactInteger)
    v.SetInt64(static_cast<std::int64_t>(d));
  return json::to_string(v);
}

// Present and not null; OpenAI clients send null for "not set".
const json::Value* member(const json::Value& o, std::string_view key) {
  const json::Value* v = json::find(o, key);
  return v == nullptr || v->IsNull() ? nullptr : v;
}

const NumericField& field(std::string_view name) {
  for (const auto& f : kNumericFields) {
    if (f.name == name) return f;
  }
  throw std::logic_error("no chat request field " + std::string(name));
}

// A field's upper bound under `limits`, and why when it is not the table's own.
struct Upper {
  double max;
  std::string why;
};
Upper upper(const NumericField& f, const ChatLimits& limits) {
  if ((f.name == "max_tokens" || f.name == "max_completion_tokens") && limits.max_context > 0) {
    return {std::min(f.max, static_cast<double>(limits.max_context)),
            " (the model's context holds " + std::to_string(limits.max_context) +
                " tokens, prompt and generated together)"};
  }
  return {f.max, {}};
}

// The checked value of one numeric field, or its default for `form`.
std::optional<double> numeric(const NumericField& f, const json::Value& body, Form form,
                              const ChatLimits& limits) {
  const json::Value* v = member(body, f.name);
  if (v == nullptr) {
    if (form == Form::openai_completions &&
        (f.name == "max_tokens" || f.name == "max_completion_tokens")) {
      return kCompletionsDefaultMaxTokens;
    }
    return form == Form::native ? f.native_default : f.openai_default;
  }
  const std::string name = quoted(f.name);
  const std::string param(f.name);
  if (!v->IsNumber()) {
    fail(name + (f.kind == Kind::integer ? " must be an integer" : " must be a number"), param,
         "invalid_type");
  }
  // An integer beyond int64 (or written 1e20) is a whole number out of range, not a wrong type.
  const double d = v->IsInt64() ? static_cast<double>(v->GetInt64()) : v->GetDouble();
  if (f.kind == Kind::integer && !v->IsInt64() && d != std::floor(d)) {
    fail(name + " must be an integer", param, "invalid_type");
  }
  const Upper up = upper(f, limits);
  if (d >= f.min && d <= up.max) return d;  // false for NaN too
  const std::string got = "; got " + json::to_string(*v);
  if (f.min == f.max)
    fail(name + " must be " + number_text(f.min) + " (the only value supported)" + got, param,
         "unsupported_value");
  fail(name + " must be between " + number_text(f.min) + " and " + number_text(up.max) + up.why +
           got,
       param, "invalid_value");
}

std::optional<double> numeric(const json::Value& body, std::string_view key, Form form,
                              const ChatLimits& limits) {
  return numeric(field(key), body, form, limits);
}

std::string string_field(const json::Value& o, std::string_view key, std::size_t max_bytes,
                         const std::string& param) {
  const json::Value* v = member(o, key);
  if (v == nullptr) return {};
  if (!v->IsString()) fail(quoted(param) + " must be a string", param, "invalid_type");
  if (v->GetStringLength() > max_bytes) {
    fail(quoted(param) + " is longer than " + std::to_string(max_bytes) + " bytes", param,
         "invalid_value");
  }
  return {v->GetString(), v->GetStringLength()};
}

bool bool_field(const json::Value& o, std::string_view key, const std::string& param) {
  const json::Value* v = member(o, key);
  if (v == nullptr) return false;
  if (!v->IsBool()) fail(quoted(param) + " must be a boolean", param, "invalid_type");
  return v->GetBool();
}

std::vector<std::string> stop_field(const json::Value& body) {
  const json::Value* v = member(body, "stop");
  std::vector<std::string> out;
  if (v == nullptr) return out;
  const auto add = [&](const json::Value& s) {
    if (!s.IsString())
      fail("\"stop\" must be a string or an array of strings", "stop", "invalid_type");
    if (s.GetStringLength() == 0 || s.GetStringLength() > kMaxStopBytes) {
      fail("each stop string must have 1 to " + std::to_string(kMaxStopBytes) + " bytes", "stop",
           "invalid_value");
    }
    out.emplace_back(s.GetString(), s.GetStringLength());
  };
  if (!v->IsArray()) {
    add(*v);
    return out;
  }
  if (v->Size() > kMaxStops) {
    fail("\"stop\" holds at most " + std::to_string(kMaxStops) + " strings; got " +
             std::to_string(v->Size()),
         "stop", "invalid_value");
  }
  for (const auto& s : v->GetArray()) add(s);
  return out;
}

std::vector<Message> messages_field(const json::Value& messages) {
  if (!messages.IsArray() || messages.Empty())
    fail("\"messages\" must be a non-empty array", "messages", "invalid_type");
  if (messages.Size() > kMaxMessages) {
    fail("\"messages\" holds at most " + std::to_string(kMaxMessages) + " messages", "messages",
         "invalid_value");
  }
  std::vector<Message> list;
  std::size_t bytes = 0;
  for (rapidjson::SizeType i = 0; i < messages.Size(); ++i) {
    const json::Value& m = messages[i];
    const std::string at = "messages.[" + std::to_string(i) + "]";
    if (!m.IsObject())
      fail("each message must be an object with \"role\" and \"content\"", at, "invalid_type");
    Message msg{string_field(m, "role", kMaxRoleBytes, at + ".role"), {}};
    if (msg.role.empty())
      fail("each message needs a \"role\" string", at + ".role", "missing_required_parameter");
    const json::Value* content = member(m, "content");
    if (content != nullptr && content->IsArray()) {
      // OpenAI content parts: a text model understands the text ones only.
      for (rapidjson::SizeType j = 0; j < content->Size(); ++j) {
        const json::Value& part = (*content)[j];
        const std::string part_at = at + ".content.[" + std::to_string(j) + "]";
        if (!part.IsObject()) fail("each content part must be an object", part_at, "invalid_type");
        const std::string type = string_field(part, "type", 64, part_at + ".type");
        if (type != "text") {
          fail("only text content parts are supported; got type \"" + type + "\"",
               part_at + ".type", "unsupported_value");
        }
        msg.content += string_field(part, "text", kMaxPromptBytes, part_at + ".text");
      }
    } else {
      msg.content = string_field(m, "content", kMaxPromptBytes, at + ".content");
    }
    bytes += msg.content.size();
    if (bytes > kMaxPromptBytes) {
      fail("the messages are longer than " + std::to_string(kMaxPromptBytes) + " bytes", "messages",
           "invalid_value");
    }
    list.push_back(std::move(msg));
  }
  return list;
}

}  // namespace

ChatRequest parse_chat_request(const json::Value& body, Form form, const ChatLimits& limits) {
  if (!body.IsObject()) fail("the request must be a JSON object", {}, "invalid_type");
  ChatRequest r;
  const json::Value* prompt = member(body, "prompt");
  const json::Value* messages = member(body, "messages");
  if (form == Form::openai) {
    if (messages == nullptr)
      fail("\"messages\" is required", "messages", "missing_required_parameter");
    prompt = nullptr;  // not an OpenAI chat field: ignored like any unknown one
  } else if (form == Form::openai_completions) {
    if (prompt == nullptr) fail("\"prompt\" is required", "prompt", "missing_required_parameter");
    messages = nullptr;  // not a completions field
  } else if ((prompt == nullptr) == (messages == nullptr)) {
    fail("input needs exactly one of \"prompt\" and \"messages\"",
         prompt == nullptr ? "prompt" : "messages", "invalid_value");
  }
  if (prompt != nullptr) {
    // Legacy completions take a batch of prompts too; one prompt per request is what we serve.
    if (form == Form::openai_completions && prompt->IsArray()) {
      if (prompt->Size() != 1 || !(*prompt)[0].IsString())
        fail("\"prompt\" must be a string (or an array of one string)", "prompt",
             "unsupported_value");
      if ((*prompt)[0].GetStringLength() > kMaxPromptBytes)
        fail("\"prompt\" is longer than " + std::to_string(kMaxPromptBytes) + " bytes", "prompt",
             "invalid_value");
      r.prompt.assign((*prompt)[0].GetString(), (*prompt)[0].GetStringLength());
    } else {
      r.prompt = string_field(body, "prompt", kMaxPromptBytes, "prompt");
    }
    if (r.prompt.empty()) fail("\"prompt\" is empty", "prompt", "invalid_value");
  } else {
    r.messages = messages_field(*messages);
  }

  // Every field of the table is checked, in table order, those we read and those we only accept
  // one value of alike.
  for (const NumericField& f : kNumericFields) (void)numeric(body, f.name, form, limits);
  r.temperature = *numeric(body, "temperature", form, limits);
  r.top_p = *numeric(body, "top_p", form, limits);
  r.top_k = static_cast<int>(*numeric(body, "top_k", form, limits));
  if (auto seed = numeric(body, "seed", form, limits)) r.seed = static_cast<std::uint64_t>(*seed);
  const bool completion_tokens =
      member(body, "max_completion_tokens") != nullptr;  // OpenAI's newer name wins
  r.max_tokens = static_cast<int>(
      *numeric(body, completion_tokens ? "max_completion_tokens" : "max_tokens", form, limits));
  r.stop = stop_field(body);

  if (form == Form::openai) {
    // "top_logprobs" is checked whenever it is present; OpenAI refuses it without "logprobs".
    const auto top = numeric(kTopLogprobsField, body, form, limits);
    const json::Value* top_given = member(body, kTopLogprobsField.name);
    if (bool_field(body, "logprobs", "logprobs")) {
      r.top_logprobs = static_cast<int>(*top);
    } else if (top_given != nullptr) {
      fail("\"top_logprobs\" needs \"logprobs\": true", "top_logprobs", "invalid_value");
    }
  } else if (form == Form::openai_completions) {
    if (auto n = numeric(kCompletionLogprobsField, body, form, limits))
      r.top_logprobs = static_cast<int>(*n);
    if (bool_field(body, "echo", "echo"))
      fail("\"echo\" is not supported", "echo", "unsupported_value");
    if (const json::Value* suffix = member(body, "suffix")) {
      if (!suffix->IsString() || suffix->GetStringLength() != 0)
        fail("\"suffix\" is not supported", "suffix", "unsupported_value");
    }
    if (const json::Value* best_of = member(body, "best_of")) {
      if (!best_of->IsInt64() || best_of->GetInt64() != 1)
        fail("\"best_of\" must be 1 (the only value supported)", "best_of", "unsupported_value");
    }
  }
  if (form != Form::native) {
    r.model = string_field(body, "model", kMaxModelBytes, "model");
    r.stream = bool_field(body, "stream", "stream");
    if (const json::Value* options = member(body, "stream_options")) {
      if (!options->IsObject())
        fail("\"stream_options\" must be an object", "stream_options", "invalid_type");
      // Only a stream has chunks to add it to; a plain completion always carries its usage.
      r.include_usage =
          bool_field(*options, "include_usage", "stream_options.include_usage") && r.stream;
    }
  }
  return r;
}

}  // namespace podworker::chat

#include "textgen_handler.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "openai.h"
#include "request.h"

namespace podworker::handlers::textgen {

namespace {

int env_int(const char* name, int fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  try {
    return std::stoi(v);
  } catch (const std::exception&) {
    throw std::invalid_argument(std::string(name) + " must be an integer, got \"" + v + "\"");
  }
}

json::Document chunk(std::string_view delta, int output_tokens) {
  json::Document d(rapidjson::kObjectType);
  auto& a = d.GetAllocator();
  d.AddMember("text", json::string_value(delta, a), a);
  d.AddMember("output_tokens", output_tokens, a);
  return d;
}

// A plain delta is exactly {"text": string, "output_tokens": number}.
bool is_delta(const json::Value& v) {
  if (!v.IsObject() || v.MemberCount() != 2) return false;
  const auto text = v.FindMember("text");
  const auto count = v.FindMember("output_tokens");
  return text != v.MemberEnd() && text->value.IsString() && count != v.MemberEnd() && count->value.IsNumber();
}

}  // namespace

std::size_t TextgenHandler::merge_chunks(std::span<const json::Value* const> chunks, json::Document& merged) const {
  std::string text;
  std::size_t n = 0;
  for (; n < chunks.size(); ++n) {
    const json::Value& c = *chunks[n];
    if (is_delta(c)) {
      text.append(c["text"].GetString(), c["text"].GetStringLength());
      continue;
    }
    // The summary chunk may end the run: it carries the latest count and the totals.
    if (c.IsObject() && c.HasMember("done") && c.HasMember("text") && c["text"].IsString()) {
      text.append(c["text"].GetString(), c["text"].GetStringLength());
      ++n;
    }
    break;
  }
  if (n < 2) return 0;
  merged.CopyFrom(*chunks[n - 1], merged.GetAllocator());
  merged["text"].SetString(text.data(), static_cast<rapidjson::SizeType>(text.size()), merged.GetAllocator());
  return n;
}

void TextgenHandler::init() {
  if (generator_) return;
  const char* path_env = std::getenv("PODWORKER_MODEL");
  const std::string path = path_env && *path_env ? path_env : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error("textgen: model file " + path + " not found (scripts/fetch-model.sh downloads it, "
                             "PODWORKER_MODEL names another)");
  }
  const char* backend_env = std::getenv("PODWORKER_BACKEND");
  llm::BackendOptions options;
  options.threads = env_int("PODWORKER_THREADS", 0);
  options.max_sequences = std::clamp(env_int("PODWORKER_MAX_SEQUENCES", 32), 1, 1024);
  options.max_context = std::max(0, env_int("PODWORKER_CONTEXT", 2048));
  generator_ = llm::Generator::load(path, llm::parse_backend_kind(backend_env ? backend_env : "auto"), options);
  model_name_ = std::filesystem::path(path).stem().string();
}

void TextgenHandler::finalize() { generator_.reset(); }

chat::ChatLimits TextgenHandler::chat_limits() const { return {generator_ ? generator_->max_context() : 0}; }

Output TextgenHandler::execute(Job& job, Emitter& out) {
  if (!generator_) return Output::error("textgen: the model is not loaded (init() failed or was not called)");
  Request req;
  const chat::ChatLimits limits = chat_limits();
  try {
    const json::Value& input = job.input();
    const json::Value* route = input.IsObject() ? json::find(input, "openai_route") : nullptr;
    if (route != nullptr) {
      const std::string_view name = route->IsString() ? std::string_view(route->GetString()) : "";
      if (name != "/v1/chat/completions" && name != "/v1/completions") {
        return Output::error("unsupported openai_route: only /v1/chat/completions and /v1/completions are served");
      }
      const json::Value* body = json::find(input, "openai_input");
      if (body == nullptr) return Output::error("\"openai_input\" is required with \"openai_route\"");
      req = name == "/v1/completions" ? parse_openai_completions(*body, limits) : parse_openai(*body, limits);
    } else {
      req = parse_native(input, limits);
    }
  } catch (const chat::ChatRequestError& e) {
    // The endpoint's OpenAI route answers this very message (and param) with a 400; a job that
    // reached us through /run fails with it, the field named in the output.
    json::Document extra(rapidjson::kObjectType);
    extra.AddMember("param", json::string_value(e.param(), extra.GetAllocator()), extra.GetAllocator());
    extra.AddMember("code", json::string_value(e.code(), extra.GetAllocator()), extra.GetAllocator());
    return Output::error(e.what(), std::move(extra));
  }

  llm::TextRequest text_req;
  text_req.prompt = generator_->tokenizer().encode(req.prompt, true);
  const int context = generator_->max_context();
  const int n_prompt = static_cast<int>(text_req.prompt.size());
  if (n_prompt >= context) {
    return Output::error("the prompt has " + std::to_string(n_prompt) + " tokens; the model's context holds " +
                         std::to_string(context) + " (prompt and generated tokens together)");
  }
  text_req.sampling = req.sampling;
  text_req.max_tokens = std::min(req.max_tokens, context - n_prompt);
  text_req.stop = req.stop;
  text_req.top_logprobs = req.top_logprobs;

  OpenAiIds ids{(req.completions ? "cmpl-" : "chatcmpl-") + job.id(), req.model_name.empty() ? model_name_ : req.model_name,
                std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count(),
                req.include_usage, req.top_logprobs >= 0, req.completions};
  const model::Tokenizer& tokenizer = generator_->tokenizer();
  const TokenBytes token_bytes = [&](std::int32_t id) { return tokenizer.token_bytes(id); };
  // Streamed logprobs: the tokens generated since the last chunk go with the next chunk, so every
  // token's logprob reaches the client once, with (or before) the text it completes.
  std::vector<llm::SampledToken> pending;
  std::size_t text_offset = 0;  // legacy text_offset: bytes of the tokens already sent
  const auto take_logprobs = [&](json::Document& holder) -> const json::Value* {
    if (req.top_logprobs < 0) return nullptr;
    json::Value v = req.completions ? completion_logprobs(pending, token_bytes, text_offset, holder.GetAllocator())
                                    : chat_logprobs(pending, token_bytes, holder.GetAllocator());
    for (const auto& t : pending) text_offset += tokenizer.token_bytes(t.token).size();
    pending.clear();
    holder.SetObject();
    holder.AddMember("v", v, holder.GetAllocator());
    return &holder["v"];
  };
  llm::TokenCallback on_token;
  if (req.openai && req.stream && req.top_logprobs >= 0) {
    on_token = [&](const llm::SampledToken& t) { pending.push_back(t); };
  }
  bool sent_role = false;
  llm::TextCallback on_text;
  if (!req.openai) {
    on_text = [&](std::string_view delta, int n) {
      if (!delta.empty()) out.yield(chunk(delta, n));
    };
  } else if (req.stream) {
    on_text = [&](std::string_view delta, int) {
      if (delta.empty()) return;
      json::Document holder;
      const json::Value* lp = take_logprobs(holder);
      if (req.completions) {
        out.yield(text_completion_event(ids, delta, {}, lp));
      } else {
        out.yield(openai_chunk_event(ids, delta, !sent_role, {}, lp));
      }
      sent_role = true;
    };
  }
  const llm::TextResult result = generator_->generate_text(text_req, on_text, job.stop_token(), on_token);
  const llm::GenerationStats& st = result.stats;
  if (st.finish_reason == llm::FinishReason::error) return Output::error("generation failed: " + st.error);
  if (st.finish_reason == llm::FinishReason::cancelled) return Output{};
  const std::string_view reason = llm::finish_reason_name(st.finish_reason);

  if (req.openai) {
    if (req.stream) {
      // Tokens whose text never became a delta (a stop string's, a held-back tail) end here.
      json::Document holder;
      const json::Value* lp = pending.empty() ? nullptr : take_logprobs(holder);
      if (req.completions) {
        out.yield(text_completion_event(ids, "", reason, lp));
      } else {
        if (!sent_role) out.yield(openai_chunk_event(ids, {}, true, {}));
        out.yield(openai_chunk_event(ids, {}, false, reason, lp));
      }
      if (req.include_usage) out.yield(openai_usage_event(ids, st.input_tokens, st.output_tokens));
      out.yield(openai_done_event());
    } else {
      json::Document holder;
      pending = result.tokens;
      const json::Value* lp = take_logprobs(holder);
      if (req.completions) {
        out.yield(text_completion(ids, result.text, reason, st.input_tokens, st.output_tokens, lp));
      } else {
        out.yield(openai_completion(ids, result.text, reason, st.input_tokens, st.output_tokens, lp));
      }
    }
    return Output{};
  }
  // The last chunk carries the summary: a streaming job has no separate final output.
  json::Document last = chunk("", st.output_tokens);
  auto& a = last.GetAllocator();
  last.AddMember("done", true, a);
  last.AddMember("full_text", json::string_value(result.text, a), a);
  last.AddMember("input_tokens", st.input_tokens, a);
  last.AddMember("time_to_first_token_ms", st.time_to_first_token_ms, a);
  last.AddMember("tokens_per_second", st.tokens_per_second, a);
  last.AddMember("finish_reason", json::string_value(reason, a), a);
  out.yield(last);
  return Output{};
}

}  // namespace podworker::handlers::textgen

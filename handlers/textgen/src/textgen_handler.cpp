#include "textgen_handler.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>

#include "openai.h"
#include "request.h"
#include "textgen_metrics.h"

namespace podworker::handlers::textgen {

namespace {

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

std::vector<Setting> TextgenHandler::settings() const {
  return {
      {.name = "model",
       .default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf",
       .help = "the GGUF model file",
       .env_aliases = {"PODWORKER_MODEL"}},
      {.name = "backend",
       .default_value = "auto",
       .help = "cpu, cuda, or auto (CUDA when a GPU is usable)",
       .env_aliases = {"PODWORKER_BACKEND"}},
      {.name = "threads",
       .type = SettingType::integer,
       .default_value = "0",
       .help = "CPU threads (0: all cores)",
       .min = 0,
       .max = 4096,
       .env_aliases = {"PODWORKER_THREADS"}},
      {.name = "max_sequences",
       .type = SettingType::integer,
       .default_value = "32",
       .help = "sequences batched at once; the worker's default concurrency",
       .min = 1,
       .max = 1024,
       .env_aliases = {"PODWORKER_MAX_SEQUENCES"}},
      {.name = "context",
       .type = SettingType::integer,
       .default_value = "2048",
       .help = "tokens per sequence, prompt and generated (0: the model's own)",
       .min = 0,
       .max = 1 << 20,
       .env_aliases = {"PODWORKER_CONTEXT"}},
  };
}

void TextgenHandler::init(const HandlerContext& context) {
  if (generator_) return;
  const Settings& s = context.settings;
  const std::string& path = s.get_string("model");
  if (!std::filesystem::exists(path)) {
    throw std::runtime_error(
        "textgen: model file " + path + " (from " + s.source("model") +
        ") not found (scripts/fetch-model.sh downloads it; --set model=FILE or "
        "PODWORKER_TEXTGEN_MODEL names another)");
  }
  llm::BackendOptions options;
  options.threads = static_cast<int>(s.get_int("threads"));
  options.max_sequences = static_cast<int>(s.get_int("max_sequences"));
  options.max_context = static_cast<int>(s.get_int("context"));
  generator_ =
      llm::Generator::load(path, llm::parse_backend_kind(s.get_string("backend")), options);
  TextgenMetrics& m = textgen_metrics();
  m.sequences_capacity.set(options.max_sequences);
  m.kv_capacity.set(static_cast<double>(options.max_sequences) * generator_->max_context());
  model_name_ = std::filesystem::path(path).stem().string();
  capacity_ = options.max_sequences;
  context.log.info("loaded " + path + "; " + std::to_string(capacity_) +
                   " sequences batched at once");
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
  SequenceUse use(n_prompt);
  llm::TextCallback on_text;
  if (!req.openai) {
    on_text = [&](std::string_view delta, int n) {
      use.generated(n);
      if (!delta.empty()) out.yield(chunk(delta, n));
    };
  } else if (req.stream) {
    on_text = [&](std::string_view delta, int n) {
      use.generated(n);
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
  TextgenMetrics& m = textgen_metrics();
  m.prompt_tokens.inc(static_cast<std::uint64_t>(st.input_tokens));
  m.generated_tokens.inc(static_cast<std::uint64_t>(std::max(0, st.output_tokens)));
  if (st.output_tokens > 0) m.time_to_first_token.observe(st.time_to_first_token_ms / 1000.0);
  if (st.output_tokens > 1) m.tokens_per_second.observe(st.tokens_per_second);
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

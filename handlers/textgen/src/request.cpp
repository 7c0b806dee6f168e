#include "request.h"

#include <random>

#include "model/tokenizer.h"

namespace podworker::handlers::textgen {

namespace {

Request from_chat(chat::ChatRequest c) {
  Request r;
  if (c.messages.empty()) {
    r.prompt = std::move(c.prompt);
  } else {
    std::vector<model::Tokenizer::Message> list;
    list.reserve(c.messages.size());
    for (auto& m : c.messages) list.push_back({std::move(m.role), std::move(m.content)});
    r.prompt = model::Tokenizer::apply_chat_template(list);
  }
  r.sampling.temperature = static_cast<float>(c.temperature);
  r.sampling.top_p = static_cast<float>(c.top_p);
  r.sampling.top_k = c.top_k;
  r.sampling.seed = c.seed ? *c.seed : std::random_device{}();
  r.max_tokens = c.max_tokens;
  r.stop = std::move(c.stop);
  r.stream = c.stream;
  r.include_usage = c.include_usage;
  r.model_name = std::move(c.model);
  r.top_logprobs = c.top_logprobs;
  return r;
}

}  // namespace

Request parse_native(const json::Value& input, const chat::ChatLimits& limits) {
  return from_chat(chat::parse_chat_request(input, chat::Form::native, limits));
}

Request parse_openai(const json::Value& body, const chat::ChatLimits& limits) {
  Request r = from_chat(chat::parse_chat_request(body, chat::Form::openai, limits));
  r.openai = true;
  return r;
}

Request parse_openai_completions(const json::Value& body, const chat::ChatLimits& limits) {
  Request r = from_chat(chat::parse_chat_request(body, chat::Form::openai_completions, limits));
  r.openai = true;
  r.completions = true;
  return r;
}

}  // namespace podworker::handlers::textgen

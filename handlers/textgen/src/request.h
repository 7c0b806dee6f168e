// Textgen job input (native and OpenAI forms) turned into what the generator takes. The values are
// checked by podworker::chat, the definition the endpoint checks OpenAI requests with, so a job
// fails with the message the OpenAI route answers a bad request with (chat::ChatRequestError).
#pragma once

#include <string>
#include <vector>

#include "llm/sampling.h"
#include "podworker/chat_request.h"
#include "podworker/json.h"

namespace podworker::handlers::textgen {

struct Request {
  std::string prompt;  // text to tokenize (chat template already applied for messages)
  llm::SamplingParams sampling;
  int max_tokens = 256;
  std::vector<std::string> stop;
  // OpenAI route only.
  bool openai = false;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk with the usage
  std::string model_name;
  bool completions = false;  // the legacy /v1/completions route (text_completion objects)
  int top_logprobs = -1;     // -1: no logprobs; else alternatives per token (chat::ChatRequest)
};

// {"prompt": "..."} or {"messages": [...]} plus max_tokens, temperature, top_k, top_p, seed, stop.
Request parse_native(const json::Value& input, const chat::ChatLimits& limits);
// The body of an OpenAI /v1/chat/completions request.
Request parse_openai(const json::Value& body, const chat::ChatLimits& limits);
// The body of a legacy /v1/completions request.
Request parse_openai_completions(const json::Value& body, const chat::ChatLimits& limits);

}  // namespace podworker::handlers::textgen

// Parsing and validation of textgen job input (native and OpenAI forms). Throws
// std::invalid_argument with a message fit for the job's error.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "llm/sampling.h"
#include "model/tokenizer.h"
#include "podworker/json.h"

namespace podworker::handlers::textgen {

inline constexpr int kMaxTokensLimit = 4096;
inline constexpr std::size_t kMaxPromptBytes = 256 * 1024;

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
};

// {"prompt": "..."} or {"messages": [...]} plus max_tokens, temperature, top_k, top_p, seed, stop.
Request parse_native(const json::Value& input);
// The body of an OpenAI /v1/chat/completions request.
Request parse_openai(const json::Value& body);

}  // namespace podworker::handlers::textgen

// OpenAI chat.completion and chat.completion.chunk objects for the textgen handler's OpenAI route.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "podworker/json.h"

namespace podworker::handlers::textgen {

struct OpenAiIds {
  std::string id;     // "chatcmpl-<job id>"
  std::string model;  // echoed from the request, or the model file's name
  std::int64_t created = 0;
  // stream_options.include_usage: every chunk carries "usage": null and the stream ends with a
  // usage chunk (openai_usage_event).
  bool include_usage = false;
};

// One SSE event: "data: {chat.completion.chunk}\n\n". `role` adds delta.role; an empty
// finish_reason is null.
std::string openai_chunk_event(const OpenAiIds& ids, std::string_view content, bool role,
                               std::string_view finish_reason);
// The chunk that stream_options.include_usage asks for before [DONE]: "choices": [] and the usage
// of the whole request.
std::string openai_usage_event(const OpenAiIds& ids, int prompt_tokens, int completion_tokens);
std::string openai_done_event();  // "data: [DONE]\n\n"
json::Document openai_completion(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                                 int prompt_tokens, int completion_tokens);

}  // namespace podworker::handlers::textgen

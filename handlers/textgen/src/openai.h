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
};

// One SSE event: "data: {chat.completion.chunk}\n\n". `role` adds delta.role; an empty
// finish_reason is null.
std::string openai_chunk_event(const OpenAiIds& ids, std::string_view content, bool role,
                               std::string_view finish_reason);
std::string openai_done_event();  // "data: [DONE]\n\n"
json::Document openai_completion(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                                 int prompt_tokens, int completion_tokens);

}  // namespace podworker::handlers::textgen

// OpenAI chat.completion and chat.completion.chunk objects for the textgen handler's OpenAI chat
// route, and text_completion objects for the legacy completions route; with logprobs in OpenAI's
// shapes when the request asked for them.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "llm/logprobs.h"
#include "podworker/json.h"

namespace podworker::handlers::textgen {

struct OpenAiIds {
  std::string id;     // "chatcmpl-<job id>"
  std::string model;  // echoed from the request, or the model file's name
  std::int64_t created = 0;
  // stream_options.include_usage: every chunk carries "usage": null and the stream ends with a
  // usage chunk (openai_usage_event).
  bool include_usage = false;
  // The request asked for logprobs: every choice carries "logprobs" (null where it has no tokens).
  bool logprobs = false;
  bool completions = false;  // legacy route: chunks are text_completion objects
};

// The raw bytes a token id stands for (the tokenizer's token_bytes).
using TokenBytes = std::function<std::string(std::int32_t)>;

// Chat logprobs: {"content": [{"token", "logprob", "bytes", "top_logprobs": [{"token", "logprob",
// "bytes"}]}], "refusal": null}. A token that is part of a UTF-8 character has its text written
// with U+FFFD and its exact bytes in "bytes", as OpenAI does.
json::Value chat_logprobs(std::span<const llm::SampledToken> tokens, const TokenBytes& bytes,
                          json::Document::AllocatorType& a);
// Legacy completions logprobs: {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}],
// "text_offset"}; offsets count bytes of the completion text from `text_offset`.
json::Value completion_logprobs(std::span<const llm::SampledToken> tokens, const TokenBytes& bytes,
                                std::size_t text_offset, json::Document::AllocatorType& a);

// One SSE event: "data: {chat.completion.chunk}\n\n". `role` adds delta.role; an empty
// finish_reason is null.
std::string openai_chunk_event(const OpenAiIds& ids, std::string_view content, bool role,
                               std::string_view finish_reason, const json::Value* logprobs = nullptr);
// The chunk that stream_options.include_usage asks for before [DONE]: "choices": [] and the usage
// of the whole request.
std::string openai_usage_event(const OpenAiIds& ids, int prompt_tokens, int completion_tokens);
std::string openai_done_event();  // "data: [DONE]\n\n"
json::Document openai_completion(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                                 int prompt_tokens, int completion_tokens, const json::Value* logprobs = nullptr);

// Legacy completions: one streamed text_completion chunk (an empty finish_reason is null), and the
// whole text_completion object.
std::string text_completion_event(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                                  const json::Value* logprobs = nullptr);
json::Document text_completion(const OpenAiIds& ids, std::string_view text, std::string_view finish_reason,
                               int prompt_tokens, int completion_tokens, const json::Value* logprobs = nullptr);

}  // namespace podworker::handlers::textgen

// The OpenAI-compatible routes' translation, free of HTTP: a chat-completions request becomes a job
// whose input is {"openai_route": "/v1/chat/completions", "openai_input": <request>}; the finished
// job becomes the response (its output), an OpenAI-style error, or the SSE bytes of its stream.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

#include "job.h"

namespace podworker::endpoint {

inline constexpr std::string_view kOpenAiChatRoute = "/v1/chat/completions";
// The legacy completions route (a "prompt" string; "text" choices), as vLLM and llama.cpp serve it.
inline constexpr std::string_view kOpenAiCompletionsRoute = "/v1/completions";

struct OpenAiRequest {
  NewJob job;  // input and default policy filled; id and sync left to the caller
  bool stream = false;
};

// Parses a chat-completions body and checks every value with podworker::chat (the definition the
// textgen handler checks with). Throws JsonError when it is not JSON and chat::ChatRequestError
// (an std::invalid_argument naming the field) for a bad value; `max_context` (the served model's
// context, 0 = not known) bounds max_tokens. A missing, null or empty `model` becomes
// `default_model` (the endpoint's --openai-model) in the job's input, so that the handler's reply
// names the model GET /v1/models lists.
// `route` is kOpenAiChatRoute or kOpenAiCompletionsRoute (checked as chat::Form::openai_completions).
OpenAiRequest parse_openai_request(std::string_view body, const PolicyLimits& limits, std::string_view default_model,
                                   int max_context = 0, std::string_view route = kOpenAiChatRoute);

// {"error": {"message", "type", "param", "code", "job_id"?}}: the shape OpenAI clients read errors
// from; param and code are null when empty.
std::string openai_error_json(std::string_view message, std::string_view type, std::string_view job_id = {},
                              std::string_view param = {}, std::string_view code = {});
// The 400 body for a request parse_openai_request refused: the field named when it was a value.
std::string openai_request_error_json(const std::exception& e);
// The OpenAI error type for an HTTP status (invalid_request_error, authentication_error, ...).
std::string_view openai_error_type(int http_status);
// Rewrites this server's own {"error": "<text>"} body into the OpenAI shape; other bodies unchanged.
std::string openai_shaped_error(int http_status, const std::string& body);

// Appends one stream chunk (JSON text) as SSE bytes: a string chunk is SSE text already and goes
// verbatim; anything else is framed as `data: <json>\n\n`.
void append_sse_chunk(std::string& out, std::string_view chunk_json);

// A job's `error` text made readable: a worker's exception report is a JSON string holding
// {"error_type", "error_message", ...}; its error_message is the message.
std::string job_error_message(std::string_view error);

struct OpenAiResponse {
  int http_status = 200;
  std::string body;
};
// The response to a non-streaming request for an ended job, from its /status JSON and the stream
// chunks it produced: COMPLETED ⇒ 200 with the output (or, for a handler that yielded its result,
// the single chunk; an aggregated one-element list is unwrapped); FAILED / CANCELLED ⇒ 500;
// TIMED_OUT ⇒ 504; each error OpenAI-shaped.
OpenAiResponse openai_response(std::string_view job_id, std::string_view status_json,
                               const std::vector<std::string>& chunks);

// The SSE bytes that end a stream after the job ended: nothing for COMPLETED unless no chunk was
// streamed (then the output's items, as chunks); an OpenAI-shaped error event otherwise.
std::string openai_stream_tail(std::string_view job_id, std::string_view status_json, bool streamed_any);

// GET /openai/v1/models: a list holding the one served model. `created` is Unix seconds.
std::string openai_models_json(std::string_view model, std::int64_t created);
// GET /openai/v1/models/{model}: the model object alone.
std::string openai_model_json(std::string_view model, std::int64_t created);

}  // namespace podworker::endpoint

// The chat-completions request (OpenAI's /v1/chat/completions body, and the textgen handler's
// native {"prompt" | "messages", ...} input): one table of its fields and the values each may take,
// and one parser that checks them. The endpoint runs it before a job exists (a bad value is the
// client's 400, which OpenAI clients do not retry, never a failed job's 500, which they do), and
// the textgen handler runs the same parser on what it receives, so the two cannot disagree: a job
// sent through /run with a bad value fails with the very message the OpenAI route answers with.
//
// Part of the handler API (podworker_handler_api links it): a handler serving the OpenAI route
// includes this header and nothing else from the runtime.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "podworker/json.h"

namespace podworker::chat {

// The two shapes the same request comes in. The fields below mean the same in both; only the
// defaults differ (OpenAI's documented ones for the OpenAI form, the textgen handler's own for the
// native form), and the native form takes "prompt" as well as "messages".
// openai_completions is the legacy /v1/completions body: a "prompt" string instead of "messages",
// "logprobs" an integer (the number of alternatives, 0..kMaxCompletionLogprobs) instead of a
// boolean, and max_tokens defaulting to 16 as OpenAI documents; every other field as in `openai`.
enum class Form { openai, native, openai_completions };

enum class Kind { number, integer };

// One numeric field and its range, bounds included. A field whose min equals its max accepts that
// one value (a feature the API names but we do not offer, such as n > 1).
struct NumericField {
  std::string_view name;
  Kind kind;
  double min;
  double max;
  std::optional<double> openai_default;  // nullopt: no default (seed: a random one per request)
  std::optional<double> native_default;
};

// The largest integer every JSON reader keeps exact (IEEE doubles, as JavaScript clients hold
// numbers): the bound of seed.
inline constexpr double kMaxExactInteger = 9007199254740991.0;  // 2^53 - 1
// The bound of max_tokens when the model's context is not known (see ChatLimits).
inline constexpr double kMaxInt = std::numeric_limits<int>::max();

// OpenAI's documented ranges where it documents one; ours for our own fields.
//  temperature 0..2 (0 = always the most likely token); top_p 0..1 (0 keeps only the most likely
//  token, 1 = no nucleus cut); top_k >= 0 (0 = no top-k cut); seed >= 0 (negative seeds have no
//  meaning in our counter-based sampler, so they are refused rather than reinterpreted);
//  max_tokens / max_completion_tokens >= 1 and at most the model's context (ChatLimits); n only 1;
//  presence_penalty and frequency_penalty only 0 (OpenAI's range is -2..2; we apply no penalties,
//  and saying so beats ignoring the value).
inline constexpr std::array<NumericField, 9> kNumericFields{{
    {"temperature", Kind::number, 0.0, 2.0, 1.0, 0.7},
    {"top_p", Kind::number, 0.0, 1.0, 1.0, 0.95},
    {"top_k", Kind::integer, 0.0, 1 << 20, 0.0, 40.0},
    {"seed", Kind::integer, 0.0, kMaxExactInteger, std::nullopt, std::nullopt},
    {"max_tokens", Kind::integer, 1.0, kMaxInt, 256.0, 256.0},
    {"max_completion_tokens", Kind::integer, 1.0, kMaxInt, 256.0, 256.0},
    {"n", Kind::integer, 1.0, 1.0, 1.0, 1.0},
    {"presence_penalty", Kind::number, 0.0, 0.0, 0.0, 0.0},
    {"frequency_penalty", Kind::number, 0.0, 0.0, 0.0, 0.0},
}};

// logprobs. Chat (OpenAI form): "logprobs": true adds each generated token's log-probability, and
// "top_logprobs" (0..20, OpenAI's range; it needs "logprobs": true) that many alternatives per
// token. Legacy completions: "logprobs": N (0..5, OpenAI's range) does both at once.
inline constexpr NumericField kTopLogprobsField{"top_logprobs", Kind::integer, 0.0, 20.0, 0.0, 0.0};
inline constexpr NumericField kCompletionLogprobsField{"logprobs", Kind::integer, 0.0,
                                                       5.0,        std::nullopt,  std::nullopt};
inline constexpr int kCompletionsDefaultMaxTokens = 16;

inline constexpr std::size_t kMaxStops = 4;        // OpenAI: "up to 4 sequences"
inline constexpr std::size_t kMaxStopBytes = 256;  // each one non-empty
inline constexpr std::size_t kMaxMessages = 1024;
inline constexpr std::size_t kMaxPromptBytes = 256 * 1024;  // the prompt, or all message contents
inline constexpr std::size_t kMaxRoleBytes = 64;
inline constexpr std::size_t kMaxModelBytes = 256;

// What the serving model allows. max_context = 0: not known (an endpoint running without the
// model); max_tokens is then checked against its own range only, and the handler, which knows its
// model, checks the rest.
struct ChatLimits {
  int max_context = 0;  // tokens one request holds, prompt and generated together
};

// A value the request may not have. what() is the message for the client (and the failed job);
// param() names the field as OpenAI does ("temperature", "messages.[0].content.[1].type"), code()
// is OpenAI's machine-readable reason: invalid_type, invalid_value, unsupported_value,
// missing_required_parameter.
class ChatRequestError : public std::invalid_argument {
 public:
  ChatRequestError(const std::string& message, std::string param, std::string code)
      : std::invalid_argument(message), param_(std::move(param)), code_(std::move(code)) {}
  const std::string& param() const noexcept { return param_; }
  const std::string& code() const noexcept { return code_; }

 private:
  std::string param_;
  std::string code_;
};

struct Message {
  std::string role;
  std::string content;  // text parts joined
};

// A request whose every value is in range. Exactly one of prompt and messages is set.
struct ChatRequest {
  std::string prompt;  // the native form's "prompt"
  std::vector<Message> messages;
  std::string model;  // OpenAI form; empty when not named
  double temperature = 1.0;
  double top_p = 1.0;
  int top_k = 0;
  std::optional<std::uint64_t> seed;  // nullopt: the caller draws one
  int max_tokens = 256;               // max_completion_tokens when given, else max_tokens
  std::vector<std::string> stop;
  bool stream = false;         // OpenAI forms
  bool include_usage = false;  // stream_options.include_usage, and only with stream
  // OpenAI forms: -1 no logprobs; else logprobs for each generated token with this many
  // alternatives (chat: top_logprobs when "logprobs" is true; legacy completions: "logprobs").
  int top_logprobs = -1;
};

// Checks `body` against the table and returns its values (defaults filled in). Throws
// ChatRequestError for the first field that is missing, of the wrong type or out of range.
// Unknown fields are ignored, as OpenAI-compatible servers do (clients send user, ...).
ChatRequest parse_chat_request(const json::Value& body, Form form, const ChatLimits& limits = {});

}  // namespace podworker::chat

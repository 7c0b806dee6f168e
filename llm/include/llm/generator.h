// A loaded model ready to generate text: GGUF file, weights, tokenizer and a continuous-batching
// engine. Shared by every job of the process; generate_text() is thread-safe.
#pragma once

#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "llm/backend.h"
#include "llm/engine.h"
#include "model/gguf.h"
#include "model/tokenizer.h"

namespace podworker::llm {

struct TextRequest {
  std::vector<std::int32_t> prompt;
  SamplingParams sampling;
  int max_tokens = 256;
  std::vector<std::string> stop;  // stop strings; the matched one is not part of the text
  int top_logprobs = -1;          // as GenerationRequest::top_logprobs
};

struct TextResult {
  std::string text;
  GenerationStats stats;
  // With top_logprobs >= 0: every generated token in order (end tokens excluded; the tokens of a
  // matched stop string included, as they were generated).
  std::vector<SampledToken> tokens;
};

// Called with each new piece of text (complete UTF-8) and the number of tokens generated so far.
using TextCallback = std::function<void(std::string_view delta, int output_tokens)>;
// Called with each generated token before the text it completes goes to the TextCallback.
using TokenCallback = std::function<void(const SampledToken& token)>;

class Generator {
 public:
  // Loads `path` (GgufError / ModelError on a bad file) and starts the engine on `kind`.
  static std::unique_ptr<Generator> load(const std::string& path, BackendKind kind = BackendKind::automatic,
                                         const BackendOptions& options = {});

  const model::Tokenizer& tokenizer() const { return tokenizer_; }
  const LlamaWeights& weights() const { return *weights_; }
  Engine& engine() { return *engine_; }
  int max_context() const { return engine_->max_context(); }

  TextResult generate_text(const TextRequest& request, const TextCallback& on_text,
                           std::stop_token stop = {}, const TokenCallback& on_token = {});

 private:
  Generator() = default;
  std::shared_ptr<const LlamaWeights> weights_;
  model::Tokenizer tokenizer_;
  std::unique_ptr<Engine> engine_;
};

}  // namespace podworker::llm

#include "llm/generator.h"

#include "llm/text_stream.h"
#include "podworker/log.h"

namespace podworker::llm {

std::unique_ptr<Generator> Generator::load(const std::string& path, BackendKind kind, const BackendOptions& options) {
  auto file = std::make_shared<const model::GgufFile>(model::GgufFile::open(path));
  std::unique_ptr<Generator> g(new Generator());
  g->weights_ = LlamaWeights::from_gguf(file);
  g->tokenizer_ = model::Tokenizer::from_gguf(*file);
  if (g->tokenizer_.vocab_size() > g->weights_->config().n_vocab) {
    throw ModelError("the tokenizer has more tokens than the model's vocabulary");
  }
  EngineOptions engine_options;
  for (std::int32_t id = 0; id < g->tokenizer_.vocab_size(); ++id) {
    if (g->tokenizer_.is_eog(id)) engine_options.end_tokens.push_back(id);
  }
  g->engine_ = std::make_unique<Engine>(make_backend(g->weights_, kind, options), std::move(engine_options));
  log::info("llm: loaded " + path + " (" + g->weights_->config().describe() + ")");
  return g;
}

TextResult Generator::generate_text(const TextRequest& request, const TextCallback& on_text, std::stop_token stop,
                                    const TokenCallback& on_token) {
  TextStream stream(request.stop);
  TextResult result;
  int count = 0;
  GenerationRequest req{request.prompt, request.sampling, request.max_tokens, request.top_logprobs};
  result.stats = engine_->generate_tokens(
      req,
      [&](const SampledToken& sampled) {
        const std::int32_t token = sampled.token;
        ++count;
        if (request.top_logprobs >= 0) result.tokens.push_back(sampled);
        if (on_token) on_token(sampled);
        const std::string delta = stream.push(tokenizer_.token_bytes(token));
        if (on_text && (!delta.empty() || stream.stopped())) on_text(delta, count);
        return !stream.stopped();
      },
      stop);
  const std::string tail = stream.finish();
  if (!tail.empty() && on_text) on_text(tail, count);
  result.text = stream.text();
  if (stream.stopped()) result.stats.finish_reason = FinishReason::stop;
  return result;
}

}  // namespace podworker::llm

// The textgen handler class (registered as "textgen"). One instance serves every job of the
// process: execute() is thread-safe and concurrent jobs share one engine (continuous batching).
#pragma once

#include <memory>
#include <string>

#include "llm/generator.h"
#include "podworker/handler.h"

namespace podworker::handlers::textgen {

class TextgenHandler final : public Handler {
 public:
  TextgenHandler() = default;
  // Uses an already loaded generator (tests); init() then loads nothing.
  explicit TextgenHandler(std::shared_ptr<llm::Generator> generator) : generator_(std::move(generator)) {}

  // model, backend, threads, max_sequences, context; the variables of earlier releases
  // (PODWORKER_MODEL, ...) still work as aliases.
  std::vector<Setting> settings() const override;
  void init(const HandlerContext& context) override;
  void finalize() override;
  // The engine batches max_sequences sequences: unless told otherwise the worker runs that many
  // jobs at once, so concurrent jobs share decode steps instead of queueing behind each other.
  int capacity() const override { return capacity_; }
  bool streams() const override { return true; }
  Output execute(Job& job, Emitter& out) override;
  // The loaded model's context: max_tokens beyond it is refused (here and, with --serve-api, by
  // the endpoint before a job exists).
  chat::ChatLimits chat_limits() const override;
  // The native stream's merge rule: successive {"text", "output_tokens"} deltas merge into one
  // whose text is their concatenation and whose output_tokens is the latest; the final chunk
  // (done, full_text, ...) may close the run and keeps its fields, its text prefixed by the run's.
  // So a client that concatenates "text" and reads the last counts sees exactly what it would
  // have seen chunk by chunk. OpenAI-route events are strings, which the runtime concatenates.
  std::size_t merge_chunks(std::span<const json::Value* const> chunks, json::Document& merged) const override;

 private:
  std::shared_ptr<llm::Generator> generator_;
  std::string model_name_ = "SmolLM2-135M-Instruct";
  int capacity_ = 1;
};

}  // namespace podworker::handlers::textgen

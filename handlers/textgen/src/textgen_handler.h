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

  void init() override;
  void finalize() override;
  bool streams() const override { return true; }
  Output execute(Job& job, Emitter& out) override;
  // The loaded model's context: max_tokens beyond it is refused (here and, with --serve-api, by
  // the endpoint before a job exists).
  chat::ChatLimits chat_limits() const override;

 private:
  std::shared_ptr<llm::Generator> generator_;
  std::string model_name_ = "SmolLM2-135M-Instruct";
};

}  // namespace podworker::handlers::textgen

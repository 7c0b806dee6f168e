// The "textgen" handler: text generation with a llama-architecture GGUF model (SmolLM2-135M by
// default), streaming text deltas, with continuous batching across concurrent jobs.
//
// Environment, read in init(): PODWORKER_MODEL (default models/SmolLM2-135M-Instruct.Q4_1.gguf),
// PODWORKER_BACKEND (auto|cpu|cuda), PODWORKER_THREADS, PODWORKER_MAX_SEQUENCES (32),
// PODWORKER_CONTEXT (2048 tokens per sequence).
#pragma once

#include "podworker/handler.h"

namespace podworker::handlers {

// Adds "textgen".
void register_textgen(HandlerRegistry& registry);

}  // namespace podworker::handlers

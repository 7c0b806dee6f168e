// The "textgen" handler: text generation with a llama-architecture GGUF model (SmolLM2-135M by
// default), streaming text deltas, with continuous batching across concurrent jobs.
//
// Settings (`worker --help` lists them; --set NAME=VALUE or PODWORKER_TEXTGEN_<NAME>): model
// (default models/SmolLM2-135M-Instruct.Q4_1.gguf), backend (auto|cpu|cuda), threads,
// max_sequences (32, also the worker's default concurrency), context (2048 tokens per sequence).
// The earlier variables PODWORKER_MODEL, PODWORKER_BACKEND, PODWORKER_THREADS,
// PODWORKER_MAX_SEQUENCES and PODWORKER_CONTEXT still work.
#pragma once

#include "podworker/handler.h"

namespace podworker::handlers {

// Adds "textgen".
void register_textgen(HandlerRegistry& registry);

}  // namespace podworker::handlers

// Generated llama models written to a temporary directory once per test run.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "llm/weights.h"
#include "model/gguf.h"
#include "model/test_model.h"

namespace podworker::testing {

// Path of a generated model for `spec`, written on first use under the system temp directory.
std::string generated_model_path(const model::TestModelSpec& spec, const std::string& name);
std::shared_ptr<const llm::LlamaWeights> load_weights(const std::string& path);

// The first of path, ../path, ../../path, ../../../path that exists (tests run from the build
// tree or the source root), or "" when none does.
std::string find_up(const std::string& path);

// The real SmolLM2 Q4_1 file: $PODWORKER_MODEL when it names a file, else models/ found upward;
// "" when absent (the real-model cases then skip with a message).
std::string real_model_path();

// The real file requantized to the Q4_K_M mix, written once per test run (the search quantizers
// take tens of seconds under the sanitizers, and two test files use the same mix).
// keep_source_fallback: as model::QuantizeTarget's (false: llama.cpp's fallback types, the 576-wide
// matrices as Q5_0).
std::string requantized_real_model(bool keep_source_fallback);

// The small model most tests use: 2 layers, 64 wide, 4/2 heads, Q4_1 matrices, Q8_0 embedding.
model::TestModelSpec small_spec();

}  // namespace podworker::testing

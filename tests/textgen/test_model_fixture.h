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

// The small model most tests use: 2 layers, 64 wide, 4/2 heads, Q4_1 matrices, Q8_0 embedding.
model::TestModelSpec small_spec();

}  // namespace podworker::testing

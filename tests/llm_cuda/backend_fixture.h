// What the CUDA backend tests share: generated models, the device check, backend options and the
// logits comparison.
#pragma once

#include <memory>
#include <span>

#include "llm/backend.h"
#include "llm/weights.h"
#include "model/test_model.h"

namespace podworker::test {

// Writes the model to a unique temporary file, maps it and removes the file (the mapping stays).
std::shared_ptr<const llm::LlamaWeights> make_weights(const model::TestModelSpec& spec);

// Whether the CUDA runtime sees a device (false in a build without CUDA).
bool have_gpu();

llm::BackendOptions options(int max_sequences = 8, int max_context = 128);

// Relative L2 norm of got - want.
double rel_l2(std::span<const float> got, std::span<const float> want);

}  // namespace podworker::test

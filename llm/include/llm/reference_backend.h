// The reference backend: the llama graph (llm/forward.h) on the reference ops of kernels/cpu, plain
// loops in double where it matters, F32 activations, weights dequantized row by row. Slow and
// obviously right: the oracle the fast backends and their ops are tested against.
#pragma once

#include <memory>

#include "llm/backend.h"

namespace podworker::llm {

std::unique_ptr<Backend> make_reference_backend(std::shared_ptr<const LlamaWeights> weights,
                                                const BackendOptions& options = {});

}  // namespace podworker::llm

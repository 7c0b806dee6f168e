// The CPU backend: quantized weights used in place, activations quantized to 8 bits, SIMD integer
// dot products (AVX2 / AVX512-VNNI chosen at run time, scalar elsewhere), a persistent thread pool.
#pragma once

#include <memory>

#include "llm/backend.h"

namespace podworker::llm {

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const LlamaWeights> weights,
                                          const BackendOptions& options = {});

}  // namespace podworker::llm

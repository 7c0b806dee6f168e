// The CUDA backend's factory, defined in llm/cuda/cuda_backend.cu. It lives in the CUDA backend
// module (libpodworker_cuda.so, llm/cuda/module.cpp), which make_backend() opens on demand; only
// code linked with podworker_llm_cuda itself (the module, white-box tests) calls it directly.
#pragma once

#include <memory>

#include "llm/backend.h"

namespace podworker::llm {

// Throws BackendUnavailable when there is no device (or options.device does not exist).
std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const LlamaWeights> weights,
                                           const BackendOptions& options = {});

}  // namespace podworker::llm

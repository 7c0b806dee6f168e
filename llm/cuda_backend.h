// Entry points of the CUDA backend, defined in llm/cuda/ (compiled only when PODWORKER_HAVE_CUDA
// is on and that folder has sources; PODWORKER_LLM_HAVE_CUDA is then defined for llm/).
#pragma once

#include <memory>

#include "llm/backend.h"

namespace podworker::llm {

// Number of usable CUDA devices (0 when no driver or no GPU; never throws). Defined in backend.cpp
// through kernels::cuda::device_count().
int cuda_device_count();
// Defined in llm/cuda/; without it (CUDA not built) backend.cpp defines it to throw
// BackendUnavailable. Throws BackendUnavailable when there is no device.
std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const LlamaWeights> weights,
                                           const BackendOptions& options = {});

}  // namespace podworker::llm

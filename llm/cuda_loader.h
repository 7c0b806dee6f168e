// The program's side of the CUDA backend module (llm/cuda/module.h): opening libpodworker_cuda.so
// on first use. Nothing here links CUDA: the module is opened with dlopen() only when
// make_backend() is asked for CUDA and the driver (podworker/cuda_probe.h) sees a device.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "llm/backend.h"

namespace podworker::llm {

// Where the module is looked for, in order: $PODWORKER_CUDA_MODULE (a file path) alone when set;
// else libpodworker_cuda.so beside the executable, then in the install's module directory relative
// to it (bin/../lib/podworker/), then where this build tree put it.
std::vector<std::filesystem::path> cuda_module_candidates();

// Opens the module (once per process; later calls reuse it) and asks it for a backend. Throws
// BackendUnavailable when this build has no module, it is not found, it cannot be loaded (a
// missing libcudart or libcublas, say), it is from another build, or it finds no device.
std::unique_ptr<Backend> make_cuda_backend_from_module(std::shared_ptr<const LlamaWeights> weights,
                                                       const BackendOptions& options);

}  // namespace podworker::llm

// The program's side of the CUDA backend module (llm/cuda/module.h): finding a device without the
// CUDA runtime, and opening libpodworker_cuda.so on first use. Nothing here links CUDA: the driver
// (libcuda.so.1) and the module are opened with dlopen() only when make_backend() is asked for
// CUDA.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "llm/backend.h"

namespace podworker::llm {

// What the driver API reports, through libcuda.so.1 opened for the question and closed after it
// (the driver honours CUDA_VISIBLE_DEVICES). devices is 0 when there is no driver or no device;
// why_none then says which.
struct CudaDriverProbe {
  int devices = 0;
  std::string why_none;
};
CudaDriverProbe probe_cuda_driver();

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

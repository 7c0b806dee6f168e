// Error checks for the CUDA backend's own runtime calls: a failure throws kernels::cuda::CudaError
// naming the call, the same type the kernels' launchers throw.
#pragma once

#include <cuda_runtime.h>

#include <string>

#include "kernels/device.h"

namespace podworker::llm::cuda {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw kernels::cuda::CudaError(std::string(what) + ": " + cudaGetErrorName(status) + " (" +
                                       cudaGetErrorString(status) + ")",
                                   static_cast<int>(status));
  }
}

// Right after each launch: a bad configuration shows up at its launch, not at the next sync.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

inline cudaStream_t native(kernels::cuda::StreamView s) { return static_cast<cudaStream_t>(s.handle); }

}  // namespace podworker::llm::cuda

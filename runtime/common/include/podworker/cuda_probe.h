// The CUDA driver (and runtime) asked whether there is a GPU, through libcuda.so.1 (libcudart)
// opened with dlopen() for the question and closed after it: nothing links CUDA, so a CPU-only
// build and a machine without a driver both run and say why there is no GPU. The worker's GPU
// fitness check and the text generator's choice of backend both ask here, so they cannot disagree
// about a machine.
#pragma once

#include <string>

namespace podworker {

// What the driver API reports (the driver honours CUDA_VISIBLE_DEVICES). devices is 0 when there
// is no driver or no device; why_none then says which.
struct CudaDriverProbe {
  int devices = 0;
  // cuDriverGetVersion: the newest CUDA the driver supports, 1000*major + 10*minor; 0 when no
  // driver could be initialised.
  int driver_version = 0;
  std::string why_none;
};
CudaDriverProbe probe_cuda_driver();

// cudaRuntimeGetVersion of the CUDA runtime library the loader finds (libcudart.so, then the
// .so.13, .so.12 and .so.11.0 sonames), in the driver's encoding; 0 when there is none.
int cuda_runtime_version();

}  // namespace podworker

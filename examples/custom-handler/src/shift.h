// The example's computation: a Caesar shift of the ASCII letters of a text (other bytes, including
// every byte of a multi-byte UTF-8 character, pass unchanged, so valid UTF-8 stays valid).
// shift_cpu is the reference; shift_cuda runs the same transform as a CUDA kernel.
#pragma once

#include <string>
#include <string_view>

#include "kernels/device.h"

namespace shift {

// Brings any shift into [0, 26).
int normalize(long long shift);

// The reference: returns `text` with its letters shifted by `shift` (already normalized).
std::string shift_cpu(std::string_view text, int shift);

// True when this build has the CUDA kernel and a CUDA device is usable.
bool cuda_available();

// The CUDA kernel on `stream`; waits for it and returns the result. Throws
// podworker::kernels::cuda::NotCompiled when built without CUDA, CudaError on a CUDA failure.
std::string shift_cuda(std::string_view text, int shift, podworker::kernels::cuda::StreamView stream);

}  // namespace shift

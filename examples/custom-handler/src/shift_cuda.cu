// The shift transform as a CUDA kernel: one thread per byte. Compiled only when the project finds
// nvcc and podworker was built with CUDA; shift_cpu.cpp is its reference.
#include <cuda_runtime.h>

#include <string>

#include "shift.h"

namespace shift {
namespace {

__global__ void shift_kernel(char* text, std::size_t n, int shift) {
  std::size_t i = blockIdx.x * static_cast<std::size_t>(blockDim.x) + threadIdx.x;
  if (i >= n) return;
  char c = text[i];
  if (c >= 'a' && c <= 'z') c = static_cast<char>('a' + (c - 'a' + shift) % 26);
  if (c >= 'A' && c <= 'Z') c = static_cast<char>('A' + (c - 'A' + shift) % 26);
  text[i] = c;
}

}  // namespace

bool cuda_available() { return podworker::kernels::cuda::device_count() > 0; }

std::string shift_cuda(std::string_view text, int shift,
                       podworker::kernels::cuda::StreamView stream) {
  namespace cu = podworker::kernels::cuda;
  std::string out(text);
  if (out.empty()) return out;
  cu::DeviceBuffer<char> device(out.size());
  device.upload({out.data(), out.size()}, stream);
  constexpr unsigned kThreads = 256;
  const auto blocks = static_cast<unsigned>((out.size() + kThreads - 1) / kThreads);
  auto* cuda_stream = static_cast<cudaStream_t>(stream.handle);
  shift_kernel<<<blocks, kThreads, 0, cuda_stream>>>(device.get(), out.size(), shift);
  if (cudaError_t err = cudaGetLastError(); err != cudaSuccess) {
    throw cu::CudaError(std::string("shift_kernel launch: ") + cudaGetErrorString(err), err);
  }
  device.download({out.data(), out.size()}, stream);
  if (cudaError_t err = cudaStreamSynchronize(cuda_stream); err != cudaSuccess) {
    throw cu::CudaError(std::string("shift_kernel: ") + cudaGetErrorString(err), err);
  }
  return out;
}

}  // namespace shift

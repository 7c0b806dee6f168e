// Elementwise kernels: SwiGLU and the residual add. Grid-stride loops, float4 when aligned.
#include "kernels/add.h"
#include "kernels/cuda/common.cuh"
#include "kernels/swiglu.h"

namespace podworker::kernels::cuda {

namespace {

__device__ __forceinline__ float silu_mul(float g, float u) { return g / (1.0f + expf(-g)) * u; }

__global__ void swiglu_kernel(const float* gate, const float* up, float* out, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = silu_mul(gate[i], up[i]);
  }
}

__global__ void add_kernel(const float* a, const float* b, float* out, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  const std::int64_t n4 = n / 4;
  const float4* a4 = reinterpret_cast<const float4*>(a);
  const float4* b4 = reinterpret_cast<const float4*>(b);
  float4* o4 = reinterpret_cast<float4*>(out);
  const std::int64_t first = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  for (std::int64_t i = first; i < n4; i += stride) {
    const float4 x = a4[i];
    const float4 y = b4[i];
    o4[i] = make_float4(x.x + y.x, x.y + y.y, x.z + y.z, x.w + y.w);
  }
  for (std::int64_t i = n4 * 4 + first; i < n; i += stride) out[i] = a[i] + b[i];
}

__global__ void add_scalar_kernel(const float* a, const float* b, float* out, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    out[i] = a[i] + b[i];
  }
}

unsigned int grid_for(std::int64_t n, int threads) { return std::min(detail::blocks_for(n, threads), 4096u); }

}  // namespace

void swiglu(const float* gate, const float* up, float* out, std::int64_t n, StreamView stream) {
  if (n <= 0) return;
  constexpr int threads = 256;
  swiglu_kernel<<<grid_for(n, threads), threads, 0, detail::native(stream)>>>(gate, up, out, n);
  detail::check_launch("swiglu_kernel");
}

void add(const float* a, const float* b, float* out, std::int64_t n, StreamView stream) {
  if (n <= 0) return;
  constexpr int threads = 256;
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  if (aligned(a) && aligned(b) && aligned(out)) {
    add_kernel<<<grid_for(n / 4 + 1, threads), threads, 0, detail::native(stream)>>>(a, b, out, n);
  } else {
    add_scalar_kernel<<<grid_for(n, threads), threads, 0, detail::native(stream)>>>(a, b, out, n);
  }
  detail::check_launch("add_kernel");
}

}  // namespace podworker::kernels::cuda

// RMSNorm: one block per row; float4 loads when the row allows it, a block reduction of the sum of
// squares, then the scaled write. Memory-bound: reads x twice (the second from L1/L2), writes y once.
#include "kernels/cuda/common.cuh"
#include "kernels/rmsnorm.h"

namespace podworker::kernels::cuda {

namespace {

template <bool Vec4>
// x is not __restrict__: y may alias x (kernels/rmsnorm.h), and a restrict-qualified x would let the
// compiler read it through the non-coherent read-only path while the same kernel writes it.
__global__ void rmsnorm_kernel(const float* x, const float* __restrict__ weight, float* y,
                               std::int64_t dim, float eps) {
  const float* xr = x + blockIdx.x * dim;
  float* yr = y + blockIdx.x * dim;
  float sum_sq = 0.0f;
  if constexpr (Vec4) {
    const float4* x4 = reinterpret_cast<const float4*>(xr);
    for (std::int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) {
      const float4 v = x4[i];
      sum_sq += v.x * v.x + v.y * v.y + v.z * v.z + v.w * v.w;
    }
  } else {
    for (std::int64_t i = threadIdx.x; i < dim; i += blockDim.x) sum_sq += xr[i] * xr[i];
  }
  const float inv_rms = rsqrtf(detail::block_sum(sum_sq) / static_cast<float>(dim) + eps);
  if constexpr (Vec4) {
    const float4* x4 = reinterpret_cast<const float4*>(xr);
    const float4* w4 = reinterpret_cast<const float4*>(weight);
    float4* y4 = reinterpret_cast<float4*>(yr);
    for (std::int64_t i = threadIdx.x; i < dim / 4; i += blockDim.x) {
      const float4 v = x4[i];
      const float4 w = __ldg(w4 + i);
      y4[i] = make_float4(v.x * inv_rms * w.x, v.y * inv_rms * w.y, v.z * inv_rms * w.z, v.w * inv_rms * w.w);
    }
  } else {
    for (std::int64_t i = threadIdx.x; i < dim; i += blockDim.x) yr[i] = xr[i] * inv_rms * weight[i];
  }
}

}  // namespace

void rmsnorm(const float* x, const float* weight, float* y, std::int64_t rows, std::int64_t dim, float eps,
             StreamView stream) {
  if (rows <= 0 || dim <= 0) return;
  const auto aligned = [](const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; };
  const bool vec4 = dim % 4 == 0 && aligned(x) && aligned(y) && aligned(weight);
  // Enough threads to cover a row in one or two float4 steps; rows are short (576..8192).
  const int threads = dim >= 4096 ? 1024 : dim >= 1024 ? 256 : 128;
  if (vec4) {
    rmsnorm_kernel<true><<<static_cast<unsigned>(rows), threads, 0, detail::native(stream)>>>(x, weight, y, dim, eps);
  } else {
    rmsnorm_kernel<false><<<static_cast<unsigned>(rows), threads, 0, detail::native(stream)>>>(x, weight, y, dim, eps);
  }
  detail::check_launch("rmsnorm_kernel");
}

}  // namespace podworker::kernels::cuda

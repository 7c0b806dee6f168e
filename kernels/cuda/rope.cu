// RoPE on adjacent pairs, in place; one thread per (token, head, pair). Positions come from device
// memory so a captured graph replays with new positions. Angles are computed in double: at positions
// of thousands a float angle would be off by ~1e-4 rad, and FP64 is cheap at this size.
#include "kernels/cuda/common.cuh"
#include "kernels/rope.h"

namespace podworker::kernels::cuda {

namespace {

__global__ void rope_kernel(float* x, std::int64_t tokens, int n_heads, int head_dim, std::int64_t token_stride,
                            const int* __restrict__ pos, float base) {
  const int half = head_dim / 2;
  const std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= tokens * n_heads * half) return;
  const int pair = static_cast<int>(i % half);
  const std::int64_t th = i / half;
  const int head = static_cast<int>(th % n_heads);
  const std::int64_t t = th / n_heads;
  const double theta = static_cast<double>(pos[t]) * pow(static_cast<double>(base), -2.0 * pair / head_dim);
  double s = 0.0, c = 0.0;
  sincos(theta, &s, &c);
  float2* v = reinterpret_cast<float2*>(x + t * token_stride + static_cast<std::int64_t>(head) * head_dim) + pair;
  const float2 p = *v;
  const float cf = static_cast<float>(c), sf = static_cast<float>(s);
  *v = make_float2(p.x * cf - p.y * sf, p.x * sf + p.y * cf);
}

}  // namespace

void rope(float* x, std::int64_t tokens, int n_heads, int head_dim, std::int64_t token_stride, const int* d_pos,
          float base, StreamView stream) {
  if (tokens <= 0 || n_heads <= 0 || head_dim <= 0) return;
  const std::int64_t n = tokens * n_heads * (head_dim / 2);
  constexpr int threads = 256;
  rope_kernel<<<detail::blocks_for(n, threads), threads, 0, detail::native(stream)>>>(x, tokens, n_heads, head_dim,
                                                                                     token_stride, d_pos, base);
  detail::check_launch("rope_kernel");
}

}  // namespace podworker::kernels::cuda

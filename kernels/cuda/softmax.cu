// Row-wise softmax in place: one block per row, three passes (max, sum of exp, scale); the row is
// re-read from L1/L2, which for rows up to the vocabulary size (192 KiB) stays cache-resident.
#include "kernels/cuda/common.cuh"
#include "kernels/softmax.h"

namespace podworker::kernels::cuda {

namespace {

__global__ void softmax_kernel(float* x, std::int64_t cols) {
  float* row = x + blockIdx.x * cols;
  float max = -INFINITY;
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) max = fmaxf(max, row[i]);
  max = detail::block_max(max);
  float sum = 0.0f;
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) {
    const float e = expf(row[i] - max);
    row[i] = e;
    sum += e;
  }
  const float inv = 1.0f / detail::block_sum(sum);
  for (std::int64_t i = threadIdx.x; i < cols; i += blockDim.x) row[i] *= inv;
}

}  // namespace

void softmax(float* x, std::int64_t rows, std::int64_t cols, StreamView stream) {
  if (rows <= 0 || cols <= 0) return;
  const int threads = cols >= 8192 ? 1024 : cols >= 1024 ? 256 : 128;
  softmax_kernel<<<static_cast<unsigned>(rows), threads, 0, detail::native(stream)>>>(x, cols);
  detail::check_launch("softmax_kernel");
}

}  // namespace podworker::kernels::cuda

// Reference RMSNorm (the oracle of every backend's rmsnorm, and the fast CPU backend's own).
#include "kernels/rmsnorm.h"

#include <cmath>
#include <vector>

#include "kernels/half.h"

namespace podworker::kernels::cpu {

void rmsnorm(const float* x, const float* weight, float* y, std::int64_t rows, std::int64_t dim, float eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    // F32 is enough here: every term is positive, so the sum's relative error stays near dim * eps
    // (1e-4 at most for the hidden sizes we run), far below any tolerance; and the fast CPU backend
    // calls this function, whose exact arithmetic its pinned greedy output depends on.
    float sum_sq = 0.0f;
    for (std::int64_t i = 0; i < dim; ++i) sum_sq += xr[i] * xr[i];
    const float inv_rms = 1.0f / std::sqrt(sum_sq / static_cast<float>(dim) + eps);
    for (std::int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv_rms * weight[i];
  }
}

void rmsnorm_to_f16(const float* x, const float* weight, half_bits* y, std::int64_t rows, std::int64_t dim,
                    float eps) {
  std::vector<float> row(static_cast<std::size_t>(dim));
  for (std::int64_t r = 0; r < rows; ++r) {
    rmsnorm(x + r * dim, weight, row.data(), 1, dim, eps);
    for (std::int64_t i = 0; i < dim; ++i) y[r * dim + i] = fp32_to_fp16(row[static_cast<std::size_t>(i)]);
  }
}

}  // namespace podworker::kernels::cpu

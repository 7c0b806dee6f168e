// CPU reference RMSNorm.
#include "kernels/rmsnorm.h"

#include <cmath>

namespace podworker::kernels::cpu {

void rmsnorm(const float* x, const float* weight, float* y, std::int64_t rows, std::int64_t dim, float eps) {
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    float sum_sq = 0.0f;
    for (std::int64_t i = 0; i < dim; ++i) sum_sq += xr[i] * xr[i];
    const float inv_rms = 1.0f / std::sqrt(sum_sq / static_cast<float>(dim) + eps);
    for (std::int64_t i = 0; i < dim; ++i) yr[i] = xr[i] * inv_rms * weight[i];
  }
}

}  // namespace podworker::kernels::cpu

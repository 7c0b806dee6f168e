// RMSNorm over the last dimension: y[r, i] = x[r, i] / sqrt(mean_j(x[r, j]^2) + eps) * weight[i].
// x, y: [rows, dim] row-major (y may alias x); weight: [dim].
#pragma once

#include <cstdint>

#include "kernels/device.h"

namespace podworker::kernels {
namespace cpu {
void rmsnorm(const float* x, const float* weight, float* y, std::int64_t rows, std::int64_t dim, float eps);
}
namespace cuda {
void rmsnorm(const float* x, const float* weight, float* y, std::int64_t rows, std::int64_t dim, float eps,
             StreamView stream);
}
}  // namespace podworker::kernels

// RMSNorm over the last dimension: y[r, i] = x[r, i] / sqrt(mean_j(x[r, j]^2) + eps) * weight[i].
// x, y: [rows, dim] row-major (y may alias x); weight: [dim].
#pragma once

#include <cstdint>

#include "kernels/device.h"
#include "kernels/ggml_types.h"

namespace podworker::kernels {
namespace cpu {
void rmsnorm(const float* x, const float* weight, float* y, std::int64_t rows, std::int64_t dim, float eps);
// The fused form that feeds an F16 GEMM (llm/cuda rmsnorm_to_f16): rmsnorm, then each value rounded
// to binary16.
void rmsnorm_to_f16(const float* x, const float* weight, half_bits* y, std::int64_t rows, std::int64_t dim,
                    float eps);
}
namespace cuda {
void rmsnorm(const float* x, const float* weight, float* y, std::int64_t rows, std::int64_t dim, float eps,
             StreamView stream);
}
}  // namespace podworker::kernels

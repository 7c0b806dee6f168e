// Row-wise softmax in place: x[r, i] = exp(x[r, i] - max_r) / sum_j exp(x[r, j] - max_r); x: [rows, cols].
#pragma once

#include <cstdint>

#include "kernels/device.h"

namespace podworker::kernels {
namespace cpu {
void softmax(float* x, std::int64_t rows, std::int64_t cols);
}
namespace cuda {
void softmax(float* x, std::int64_t rows, std::int64_t cols, StreamView stream);
}
}  // namespace podworker::kernels

// CPU reference row-wise softmax.
#include "kernels/softmax.h"

#include <algorithm>
#include <cmath>

namespace podworker::kernels::cpu {

void softmax(float* x, std::int64_t rows, std::int64_t cols) {
  for (std::int64_t r = 0; r < rows; ++r) {
    float* xr = x + r * cols;
    const float max = *std::max_element(xr, xr + cols);
    float sum = 0.0f;
    for (std::int64_t i = 0; i < cols; ++i) {
      xr[i] = std::exp(xr[i] - max);
      sum += xr[i];
    }
    for (std::int64_t i = 0; i < cols; ++i) xr[i] /= sum;
  }
}

}  // namespace podworker::kernels::cpu

// Residual add: out[i] = a[i] + b[i], n elements; out may alias a or b.
#pragma once

#include <cstdint>

#include "kernels/device.h"

namespace podworker::kernels {
namespace cpu {
void add(const float* a, const float* b, float* out, std::int64_t n);
}
namespace cuda {
void add(const float* a, const float* b, float* out, std::int64_t n, StreamView stream);
}
}  // namespace podworker::kernels

// CPU references for the elementwise ops: SwiGLU and the residual add.
#include <cmath>

#include "kernels/add.h"
#include "kernels/swiglu.h"

namespace podworker::kernels::cpu {

void swiglu(const float* gate, const float* up, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void add(const float* a, const float* b, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

}  // namespace podworker::kernels::cpu

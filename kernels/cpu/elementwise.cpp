// CPU references for the elementwise ops: SwiGLU and the residual add.
#include <cmath>

#include "kernels/add.h"
#include "kernels/swiglu.h"

namespace podworker::kernels::cpu {

void swiglu(const float* gate, const float* up, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void swiglu_rows(const float* gate_up, std::int64_t tokens, std::int64_t n_ff, float* out) {
  for (std::int64_t t = 0; t < tokens; ++t) {
    const float* g = gate_up + t * 2 * n_ff;
    swiglu(g, g + n_ff, out + t * n_ff, n_ff);
  }
}

void add(const float* a, const float* b, float* out, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

}  // namespace podworker::kernels::cpu

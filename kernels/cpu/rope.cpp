// CPU reference RoPE on adjacent pairs (GGML_ROPE_TYPE_NORM).
#include "kernels/rope.h"

#include <cmath>
#include <stdexcept>

namespace podworker::kernels::cpu {

void rope(float* x, std::int64_t tokens, int n_heads, int head_dim, std::int64_t token_stride, const int* pos,
          float base) {
  if (head_dim % 2 != 0) throw std::invalid_argument("rope: head_dim must be even");
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + t * token_stride + static_cast<std::int64_t>(h) * head_dim;
      for (int i = 0; i < head_dim / 2; ++i) {
        // theta in double: positions reach tens of thousands and the reference should not drift.
        const double theta =
            static_cast<double>(pos[t]) * std::pow(static_cast<double>(base), -2.0 * i / head_dim);
        const float c = static_cast<float>(std::cos(theta));
        const float s = static_cast<float>(std::sin(theta));
        const float x0 = v[2 * i];
        const float x1 = v[2 * i + 1];
        v[2 * i] = x0 * c - x1 * s;
        v[2 * i + 1] = x0 * s + x1 * c;
      }
    }
  }
}

}  // namespace podworker::kernels::cpu

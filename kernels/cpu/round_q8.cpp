// Reference of the fast CPU matmul's activation quantization (kernels/dequantize.h).
#include <cmath>
#include <stdexcept>

#include "kernels/dequantize.h"

namespace podworker::kernels::cpu {

void round_to_q8_blocks(const float* src, float* dst, std::int64_t n) {
  if (n % 32 != 0) throw std::invalid_argument("round_to_q8_blocks: n must be a multiple of 32");
  for (std::int64_t b = 0; b < n / 32; ++b) {
    const float* v = src + b * 32;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(v[j]));
    const float d = amax / 127.0f;
    const float id = d > 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) dst[b * 32 + j] = d * std::nearbyint(v[j] * id);
  }
}

}  // namespace podworker::kernels::cpu

// Reference RoPE on adjacent pairs (GGML_ROPE_TYPE_NORM), and the fused rope + KV store.
#include "kernels/rope.h"

#include <cmath>
#include <stdexcept>

#include "kernels/attention.h"

namespace podworker::kernels::cpu {

void rope(float* x, std::int64_t tokens, int n_heads, int head_dim, std::int64_t token_stride, const int* pos,
          float base) {
  if (head_dim % 2 != 0) throw std::invalid_argument("rope: head_dim must be even");
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (int i = 0; i < head_dim / 2; ++i) {
      // theta in double: positions reach tens of thousands, where a float angle is off by several
      // ulps of pi.
      const double theta = static_cast<double>(pos[t]) * std::pow(static_cast<double>(base), -2.0 * i / head_dim);
      const auto c = static_cast<float>(std::cos(theta));
      const auto s = static_cast<float>(std::sin(theta));
      for (int h = 0; h < n_heads; ++h) {
        float* v = x + t * token_stride + static_cast<std::int64_t>(h) * head_dim;
        const float x0 = v[2 * i];
        const float x1 = v[2 * i + 1];
        v[2 * i] = x0 * c - x1 * s;
        v[2 * i + 1] = x0 * s + x1 * c;
      }
    }
  }
}

void rope_store(float* qkv, std::int64_t stride, std::int64_t tokens, const AttentionShape& shape, float base,
                float* k_cache, float* v_cache, const int* slots, const int* pos) {
  const std::int64_t q_dim = shape.q_dim();
  // k follows q in each row: one rotation over both.
  rope(qkv, tokens, shape.n_q_heads + shape.n_kv_heads, shape.head_dim, stride, pos, base);
  kv_store(qkv + q_dim, qkv + q_dim + shape.kv_dim(), stride, tokens, k_cache, v_cache, shape, slots, pos);
}

}  // namespace podworker::kernels::cpu

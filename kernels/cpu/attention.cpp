// Reference attention over the KV cache (see kernels/attention.h for the layout), in double.
#include "kernels/attention.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

namespace podworker::kernels::cpu {

namespace {

void check_shape(const AttentionShape& s) {
  if (s.n_q_heads <= 0 || s.n_kv_heads <= 0 || s.n_q_heads % s.n_kv_heads != 0 || s.head_dim <= 0 ||
      s.max_ctx <= 0 || s.n_slots <= 0) {
    throw std::invalid_argument("attention: bad shape");
  }
}

void check_slot(const AttentionShape& s, int slot) {
  if (slot < 0 || slot >= s.n_slots) throw std::out_of_range("attention: slot outside the cache");
}

// One query head against positions [0, len) of one slot.
void attend_one(const float* q, const float* k_cache, const float* v_cache, float* out, const AttentionShape& s,
                int slot, int kv_head, int len, float scale) {
  const std::int64_t kv_dim = s.kv_dim();
  const std::int64_t at = static_cast<std::int64_t>(slot) * s.max_ctx * kv_dim + kv_head * s.head_dim;
  attend_head(q, k_cache + at, v_cache + at, len, kv_dim, s.head_dim, scale, out);
}

}  // namespace

void attend_head(const float* q, const float* k, const float* v, int len, std::int64_t kv_stride, int head_dim,
                 float scale, float* out) {
  if (len <= 0) {
    // Nothing to attend to: a zero output rather than a division by zero.
    std::fill_n(out, head_dim, 0.0f);
    return;
  }
  std::vector<double> scores(static_cast<std::size_t>(len));
  for (int p = 0; p < len; ++p) {
    double dot = 0.0;
    for (int i = 0; i < head_dim; ++i) dot += static_cast<double>(q[i]) * k[p * kv_stride + i];
    scores[static_cast<std::size_t>(p)] = dot * scale;
  }
  const double max = *std::max_element(scores.begin(), scores.end());
  double sum = 0.0;
  for (double& s : scores) {
    s = std::exp(s - max);
    sum += s;
  }
  for (int i = 0; i < head_dim; ++i) {
    double acc = 0.0;
    for (int p = 0; p < len; ++p) acc += scores[static_cast<std::size_t>(p)] * v[p * kv_stride + i];
    out[i] = static_cast<float>(acc / sum);
  }
}

void kv_store(const float* k, const float* v, std::int64_t in_stride, std::int64_t tokens, float* k_cache,
              float* v_cache, const AttentionShape& shape, const int* slots, const int* pos) {
  check_shape(shape);
  const std::int64_t kv_dim = shape.kv_dim();
  for (std::int64_t t = 0; t < tokens; ++t) {
    if (pos[t] < 0 || pos[t] >= shape.max_ctx) throw std::out_of_range("kv_store: position outside the cache");
    check_slot(shape, slots[t]);
    const std::int64_t at = (static_cast<std::int64_t>(slots[t]) * shape.max_ctx + pos[t]) * kv_dim;
    std::copy_n(k + t * in_stride, kv_dim, k_cache + at);
    std::copy_n(v + t * in_stride, kv_dim, v_cache + at);
  }
}

void attention_decode(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache, float* out,
                      int batch, const AttentionShape& shape, const int* slots, const int* lens, float scale) {
  check_shape(shape);
  const int group = shape.n_q_heads / shape.n_kv_heads;
  for (int b = 0; b < batch; ++b) {
    if (lens[b] < 1 || lens[b] > shape.max_ctx) throw std::out_of_range("attention_decode: bad length");
    check_slot(shape, slots[b]);
    for (int h = 0; h < shape.n_q_heads; ++h) {
      attend_one(q + b * q_stride + h * shape.head_dim, k_cache, v_cache,
                 out + (static_cast<std::int64_t>(b) * shape.n_q_heads + h) * shape.head_dim, shape, slots[b],
                 h / group, lens[b], scale);
    }
  }
}

void attention_prefill(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache,
                       float* out, std::int64_t tokens, const AttentionShape& shape, int slot, int start_pos,
                       float scale) {
  check_shape(shape);
  if (start_pos < 0 || start_pos + tokens > shape.max_ctx) throw std::out_of_range("attention_prefill: bad range");
  check_slot(shape, slot);
  const int group = shape.n_q_heads / shape.n_kv_heads;
  for (std::int64_t t = 0; t < tokens; ++t) {
    for (int h = 0; h < shape.n_q_heads; ++h) {
      attend_one(q + t * q_stride + h * shape.head_dim, k_cache, v_cache,
                 out + (t * shape.n_q_heads + h) * shape.head_dim, shape, slot, h / group,
                 start_pos + static_cast<int>(t) + 1, scale);
    }
  }
}

}  // namespace podworker::kernels::cpu

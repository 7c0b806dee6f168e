// Attention over a KV cache with grouped-query heads (query head h reads KV head h / (n_q / n_kv)).
//
// KV cache layout (F32), one pair of buffers per layer:
//   k_cache, v_cache: [n_slots][max_ctx][n_kv_heads * head_dim]
// A slot is one sequence's cache; position p of slot s starts at (s * max_ctx + p) * kv_dim.
//
// Decode: one query token per sequence; positions, slots and lengths are DEVICE memory in the cuda::
// versions so one captured CUDA graph replays every step unchanged.
// head_dim must be a multiple of 32 and at most 256. scale is usually 1/sqrt(head_dim).
#pragma once

#include <cstdint>

#include "kernels/device.h"

namespace podworker::kernels {

struct AttentionShape {
  int n_q_heads = 9;
  int n_kv_heads = 3;
  int head_dim = 64;
  std::int64_t max_ctx = 0;  // positions per slot
  // Slots in the cache. A slot outside [0, n_slots) is never read or written: the CUDA kernels
  // give a zero output and store nothing (a bad index in device memory cannot reach another
  // buffer), the references throw std::out_of_range.
  int n_slots = 0;
  int kv_dim() const { return n_kv_heads * head_dim; }
  int q_dim() const { return n_q_heads * head_dim; }
};

namespace cpu {
// The one attention definition: one query head over `len` positions, position p's key at
// k + p * kv_stride (v likewise): out = sum_p softmax_p(scale * q . k_p) v_p, in double. len <= 0
// writes zeros. The decode and prefill references below, and the fast CPU backend's portable
// fallback, are this function.
void attend_head(const float* q, const float* k, const float* v, int len, std::int64_t kv_stride, int head_dim,
                 float scale, float* out);
// Writes `tokens` rows of k and v (row t at k + t * in_stride, kv_dim floats) into the cache at
// (slots[t], pos[t]).
void kv_store(const float* k, const float* v, std::int64_t in_stride, std::int64_t tokens, float* k_cache,
              float* v_cache, const AttentionShape& shape, const int* slots, const int* pos);
// out[b, h, :] = softmax(scale * q[b,h,:] . K[slots[b], 0..lens[b]-1, kvh, :]) V[...].
// q row b at q + b * q_stride (n_q_heads * head_dim floats); out is [batch, n_q_heads * head_dim].
void attention_decode(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache,
                      float* out, int batch, const AttentionShape& shape, const int* slots, const int* lens,
                      float scale);
// Causal prefill of one sequence in `slot`: query t (position start_pos + t) attends to cache
// positions 0..start_pos + t (its own k/v must already be stored). q is [tokens, ...] with q_stride.
void attention_prefill(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache,
                       float* out, std::int64_t tokens, const AttentionShape& shape, int slot, int start_pos,
                       float scale);
}  // namespace cpu

namespace cuda {
void kv_store(const float* k, const float* v, std::int64_t in_stride, std::int64_t tokens, float* k_cache,
              float* v_cache, const AttentionShape& shape, const int* d_slots, const int* d_pos,
              StreamView stream);
void attention_decode(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache,
                      float* out, int batch, const AttentionShape& shape, const int* d_slots, const int* d_lens,
                      float scale, StreamView stream);
void attention_prefill(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache,
                       float* out, std::int64_t tokens, const AttentionShape& shape, int slot, int start_pos,
                       float scale, StreamView stream);
}  // namespace cuda

}  // namespace podworker::kernels

// Attention over the KV cache with grouped-query heads, and the cache store.
//
// One block per (query head, query); its warps split the visible positions and each keeps an online
// softmax (running max, running sum, running weighted V) so no score array is stored; the warps are
// merged through shared memory at the end. A lane holds head_dim / 32 elements of q and of the output.
// Lengths, slots and positions are read from device memory so decode graphs replay unchanged.
// Prefill runs the same kernel with each query's length = start_pos + t + 1 (causal).
#include "kernels/attention.h"
#include "kernels/cuda/common.cuh"

#include <stdexcept>

namespace podworker::kernels::cuda {

namespace {

constexpr int kWarps = 8;

struct Geometry {
  int n_q_heads, n_kv_heads, head_dim;
  std::int64_t max_ctx;
  int n_slots;
};

// D = head_dim / 32 elements per lane.
template <int D>
__global__ void __launch_bounds__(kWarps * 32)
    attention_kernel(const float* __restrict__ q, std::int64_t q_stride, const float* __restrict__ k_cache,
                     const float* __restrict__ v_cache, float* __restrict__ out, Geometry g,
                     const int* __restrict__ slots, const int* __restrict__ lens, int fixed_slot, int start_pos,
                     float scale) {
  const int head = static_cast<int>(blockIdx.x);
  const int query = static_cast<int>(blockIdx.y);
  const int lane = static_cast<int>(threadIdx.x % 32);
  const int warp = static_cast<int>(threadIdx.x / 32);
  const int given_slot = lens != nullptr ? (slots != nullptr ? slots[query] : query) : fixed_slot;
  // A slot outside the cache reads nothing (length 0: a zero output), and a length is clamped to
  // the slot: a bad index from device memory must not read another buffer or past the cache.
  const bool bad_slot = given_slot < 0 || given_slot >= g.n_slots;
  const int slot = bad_slot ? 0 : given_slot;
  const std::int64_t given_len = lens != nullptr ? lens[query] : start_pos + query + 1;
  const int len = bad_slot ? 0 : static_cast<int>(min(given_len, g.max_ctx));
  const int kv_head = head / (g.n_q_heads / g.n_kv_heads);
  const std::int64_t kv_dim = static_cast<std::int64_t>(g.n_kv_heads) * g.head_dim;
  const float* kbase = k_cache + static_cast<std::int64_t>(slot) * g.max_ctx * kv_dim + kv_head * g.head_dim;
  const float* vbase = v_cache + static_cast<std::int64_t>(slot) * g.max_ctx * kv_dim + kv_head * g.head_dim;

  float qv[D];
  const float* qrow = q + static_cast<std::int64_t>(query) * q_stride + head * g.head_dim;
#pragma unroll
  for (int i = 0; i < D; ++i) qv[i] = qrow[lane + 32 * i] * scale;

  float m = -INFINITY, l = 0.0f, acc[D];
#pragma unroll
  for (int i = 0; i < D; ++i) acc[i] = 0.0f;
  for (int p = warp; p < len; p += kWarps) {
    const float* kp = kbase + p * kv_dim;
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < D; ++i) s += qv[i] * kp[lane + 32 * i];
    s = detail::warp_sum(s);
    const float m_new = fmaxf(m, s);
    const float corr = expf(m - m_new);  // 0 on the first position (m = -inf)
    const float e = expf(s - m_new);
    l = l * corr + e;
    const float* vp = vbase + p * kv_dim;
#pragma unroll
    for (int i = 0; i < D; ++i) acc[i] = acc[i] * corr + e * vp[lane + 32 * i];
    m = m_new;
  }

  __shared__ float s_m[kWarps], s_l[kWarps];
  __shared__ float s_acc[kWarps][D * 32];
  if (lane == 0) {
    s_m[warp] = m;
    s_l[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < D; ++i) s_acc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  for (int e = threadIdx.x; e < g.head_dim; e += blockDim.x) {
    float gm = -INFINITY;
    for (int w = 0; w < kWarps; ++w) gm = fmaxf(gm, s_m[w]);
    float total = 0.0f, value = 0.0f;
    for (int w = 0; w < kWarps; ++w) {
      if (s_l[w] == 0.0f) continue;  // a warp that saw no position
      const float f = expf(s_m[w] - gm);
      total += s_l[w] * f;
      value += s_acc[w][e] * f;
    }
    // len 0 (a bad length from device memory) attends to nothing: zeros, not 0/0.
    out[(static_cast<std::int64_t>(query) * g.n_q_heads + head) * g.head_dim + e] = total > 0.0f ? value / total : 0.0f;
  }
}

void check_shape(const AttentionShape& s) {
  if (s.n_q_heads <= 0 || s.n_kv_heads <= 0 || s.n_q_heads % s.n_kv_heads != 0 || s.head_dim % 32 != 0 ||
      s.head_dim > 256 || s.max_ctx <= 0) {
    throw std::invalid_argument("cuda::attention: head_dim must be a multiple of 32 up to 256 and heads must group");
  }
}

void launch(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache, float* out,
            std::int64_t queries, const AttentionShape& s, const int* slots, const int* lens, int fixed_slot,
            int start_pos, float scale, StreamView stream) {
  check_shape(s);
  const Geometry g{s.n_q_heads, s.n_kv_heads, s.head_dim, s.max_ctx, s.n_slots};
  const dim3 grid(static_cast<unsigned>(s.n_q_heads), static_cast<unsigned>(queries));
  const cudaStream_t st = detail::native(stream);
  switch (s.head_dim / 32) {
    case 1: attention_kernel<1><<<grid, kWarps * 32, 0, st>>>(q, q_stride, k_cache, v_cache, out, g, slots, lens, fixed_slot, start_pos, scale); break;
    case 2: attention_kernel<2><<<grid, kWarps * 32, 0, st>>>(q, q_stride, k_cache, v_cache, out, g, slots, lens, fixed_slot, start_pos, scale); break;
    case 4: attention_kernel<4><<<grid, kWarps * 32, 0, st>>>(q, q_stride, k_cache, v_cache, out, g, slots, lens, fixed_slot, start_pos, scale); break;
    case 8: attention_kernel<8><<<grid, kWarps * 32, 0, st>>>(q, q_stride, k_cache, v_cache, out, g, slots, lens, fixed_slot, start_pos, scale); break;
    default: throw std::invalid_argument("cuda::attention: head_dim must be 32, 64, 128 or 256");
  }
  detail::check_launch("attention_kernel");
}

__global__ void kv_store_kernel(const float* __restrict__ k, const float* __restrict__ v, std::int64_t in_stride,
                                float* k_cache, float* v_cache, int kv_dim, std::int64_t max_ctx, int n_slots,
                                const int* __restrict__ slots, const int* __restrict__ pos) {
  const std::int64_t t = blockIdx.x;
  const int p = pos[t];
  if (p < 0 || p >= max_ctx || slots[t] < 0 || slots[t] >= n_slots) return;  // never write outside the cache
  const std::int64_t at = (static_cast<std::int64_t>(slots[t]) * max_ctx + p) * kv_dim;
  for (int i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    k_cache[at + i] = k[t * in_stride + i];
    v_cache[at + i] = v[t * in_stride + i];
  }
}

}  // namespace

void kv_store(const float* k, const float* v, std::int64_t in_stride, std::int64_t tokens, float* k_cache,
              float* v_cache, const AttentionShape& shape, const int* d_slots, const int* d_pos, StreamView stream) {
  if (tokens <= 0) return;
  kv_store_kernel<<<static_cast<unsigned>(tokens), 192, 0, detail::native(stream)>>>(
      k, v, in_stride, k_cache, v_cache, shape.kv_dim(), shape.max_ctx, shape.n_slots, d_slots, d_pos);
  detail::check_launch("kv_store_kernel");
}

void attention_decode(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache, float* out,
                      int batch, const AttentionShape& shape, const int* d_slots, const int* d_lens, float scale,
                      StreamView stream) {
  if (batch <= 0) return;
  if (d_lens == nullptr) throw std::invalid_argument("cuda::attention_decode: lengths are required");
  launch(q, q_stride, k_cache, v_cache, out, batch, shape, d_slots, d_lens, 0, 0, scale, stream);
}

void attention_prefill(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache,
                       float* out, std::int64_t tokens, const AttentionShape& shape, int slot, int start_pos,
                       float scale, StreamView stream) {
  if (tokens <= 0) return;
  if (start_pos < 0 || start_pos + tokens > shape.max_ctx) {
    throw std::out_of_range("cuda::attention_prefill: positions outside the cache");
  }
  launch(q, q_stride, k_cache, v_cache, out, tokens, shape, nullptr, nullptr, slot, start_pos, scale, stream);
}

}  // namespace podworker::kernels::cuda

// Kernels of the llama forward pass that kernels/ does not provide in the fused, strided form the
// CUDA backend needs. Every position, slot and token a decode step reads comes from device memory,
// so a captured CUDA graph replays unchanged from step to step.
#pragma once

#include <cstdint>

#include "kernels/device.h"
#include "kernels/ggml_types.h"

namespace podworker::llm::cuda {

// Token t's row of a fused QKV buffer starts at qkv + t * stride and holds q (n_head * head_dim),
// k (n_head_kv * head_dim) and v (n_head_kv * head_dim). Rotates q and k in place on adjacent pairs
// (theta = pos[t] * base^(-2i / head_dim), as kernels/rope.h) and copies the rotated k and v into the
// caches ([slots][max_ctx][kv_dim] per layer) at (slots[t], pos[t]); a position outside [0, max_ctx)
// is not stored. One launch replaces rope + kv_store.
struct RopeStoreShape {
  int n_head = 0;
  int n_head_kv = 0;
  int head_dim = 0;
  std::int64_t max_ctx = 0;
  float rope_base = 10000.0f;
  int n_slots = 0;  // a row whose slot is outside [0, n_slots) is rotated but not stored
};
void rope_store(float* qkv, std::int64_t stride, std::int64_t tokens, const RopeStoreShape& shape, float* k_cache,
                float* v_cache, const int* d_slots, const int* d_pos, kernels::cuda::StreamView stream);

// SwiGLU over rows of a fused gate|up buffer: row t holds gate (n_ff) then up (n_ff) at gu + t * 2 n_ff;
// out row t (n_ff values, contiguous) = silu(gate) * up, as F32 or (for a following cuBLAS GEMM) F16.
void swiglu_fused(const float* gu, std::int64_t tokens, int n_ff, float* out, kernels::cuda::StreamView stream);
void swiglu_fused(const float* gu, std::int64_t tokens, int n_ff, kernels::half_bits* out,
                  kernels::cuda::StreamView stream);

// RMSNorm that writes F16 (the activation side of a cuBLAS GEMM): out[r, i] = half(x / rms(x) * w[i]).
void rmsnorm_to_f16(const float* x, const float* weight, kernels::half_bits* out, std::int64_t rows, int dim,
                    float eps, kernels::cuda::StreamView stream);

// Decode attention over the F32 KV cache (kernels/attention.h layout, grouped-query heads), built for
// latency: one block per (query head, sequence) scores all visible positions at once (a thread per
// position, scores in shared memory), then sums V with a thread per four output elements per
// position group. kernels::cuda::attention_decode walks the positions one by one per warp instead.
// q row b at q + b * q_stride; out is [batch][n_head * head_dim]; slots and lens in device memory;
// a slot outside [0, n_slots) gives a zero output.
// decode_attention_supported() says whether this kernel handles the shape (head_dim 32, 64 or 128,
// max_ctx scores fitting in the current device's shared memory per block);
// prepare_decode_attention() must run once before launches (outside graph capture) for a given
// max_ctx.
bool decode_attention_supported(int head_dim, std::int64_t max_ctx);
void prepare_decode_attention(int head_dim, std::int64_t max_ctx);
void decode_attention(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache, float* out,
                      int batch, int n_head, int n_head_kv, int head_dim, std::int64_t max_ctx, int n_slots,
                      const int* d_slots, const int* d_lens, float scale, kernels::cuda::StreamView stream);

}  // namespace podworker::llm::cuda

// Rotary position embedding, in place, on ADJACENT pairs (ggml's GGML_ROPE_TYPE_NORM, the layout of
// q/k weights in llama GGUF files after llama.cpp's conversion permuted them):
//   for head h, pair i in [0, head_dim/2):  theta = pos * base^(-2i / head_dim)
//   (x[2i], x[2i+1]) <- (x[2i] cos theta - x[2i+1] sin theta,  x[2i] sin theta + x[2i+1] cos theta)
// x: `tokens` rows, row t starts at x + t * token_stride and holds n_heads * head_dim floats
// (token_stride lets q and k be rotated inside a fused QKV buffer). pos[t] is token t's position;
// in cuda::rope it is DEVICE memory so a captured CUDA graph replays with new positions.
// SmolLM2 uses base 100000.
#pragma once

#include <cstdint>

#include "kernels/attention.h"
#include "kernels/device.h"

namespace podworker::kernels {
namespace cpu {
void rope(float* x, std::int64_t tokens, int n_heads, int head_dim, std::int64_t token_stride, const int* pos,
          float base);
// The fused op of the fast paths (llm/cuda rope_store): row t of a fused QKV buffer (at qkv + t *
// stride: q, then k, then v) has q and k rotated in place, and the rotated k and v stored into the
// caches at (slots[t], pos[t]) (kernels/attention.h layout).
void rope_store(float* qkv, std::int64_t stride, std::int64_t tokens, const AttentionShape& shape, float base,
                float* k_cache, float* v_cache, const int* slots, const int* pos);
}
namespace cuda {
void rope(float* x, std::int64_t tokens, int n_heads, int head_dim, std::int64_t token_stride, const int* d_pos,
          float base, StreamView stream);
}
}  // namespace podworker::kernels

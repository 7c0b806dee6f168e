// Quantized matrix x vector (decode) and matrix x small batch of vectors (2..64 sequences sharing one
// pass over the weights). Memory-bound: the weights are read once per call.
//
// Layout (as in GGUF / ggml): W has `rows` rows (output features) of `k` elements (input features),
// each row stored contiguously in `wtype`'s block layout (k a multiple of the block size).
// x is [batch, k] row-major, y is [batch, rows] row-major:  y[b, r] = sum_j W[r, j] * x[b, j]
// (+ y[b, r] when `accumulate`, which fuses the residual add after the attention output and FFN
// down projections). Accumulation is in F32.
#pragma once

#include <cstdint>

#include "kernels/device.h"
#include "kernels/ggml_types.h"
#include "kernels/half.h"

namespace podworker::kernels {

// The largest batch the batched mat-vec kernels accept; larger batches go through gemm.h.
inline constexpr int kMaxMatvecBatch = 64;

namespace cpu {
// Reference for every weight type dequantize() supports, any batch >= 1 (also the GEMM reference).
void matvec(GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const float* x, float* y,
            int batch = 1, bool accumulate = false);
}  // namespace cpu

namespace cuda {
// Weight types: Q4_0, Q4_1, Q8_0, F16, F32. batch in [1, kMaxMatvecBatch].
void matvec(GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const float* x, float* y,
            int batch, bool accumulate, StreamView stream);
// Same with F16 activations (x is [batch, k] binary16).
void matvec(GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const half_bits* x, float* y,
            int batch, bool accumulate, StreamView stream);
}  // namespace cuda

}  // namespace podworker::kernels

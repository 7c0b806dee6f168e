// Dequantization of GGUF tensor data (ggml block layouts, kernels/ggml_types.h) to F32, F16 or BF16,
// and quantization of F32 data into those layouts (used to make test weights and test models).
//
// Supported source types: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q8_0, Q8_1, Q4_K, Q5_K, Q6_K. `n` counts
// elements and must be a multiple of the type's block size (32, or 256 for the K-quants); otherwise
// std::invalid_argument. The CPU results equal ggml's dequantize_row_* bit for bit.
#pragma once

#include <cstdint>

#include "kernels/device.h"
#include "kernels/ggml_types.h"
#include "kernels/half.h"

namespace podworker::kernels {

// Bytes of `n` elements of `type` (n a multiple of the block size).
std::size_t tensor_bytes(GgmlType type, std::int64_t n);

namespace cpu {
void dequantize(GgmlType type, const void* src, float* dst, std::int64_t n);
// Quantizes n floats into `type` (any of the above), the way ggml's reference quantizers do (Q4_0/Q8_0:
// scale from the largest magnitude; Q4_1: min and range; K-quants: kernels/kquant.h).
void quantize(GgmlType type, const float* src, void* dst, std::int64_t n);
// The activation quantization of the fast CPU matmul, as values: each block of 32 is rounded to
// d * q, d = max|x| / 127, q = nearbyint(x * (1 / d)) in [-127, 127] (d and the products in F32).
// The reference of that fused op is matvec(W, round_to_q8_blocks(x)). n a multiple of 32.
void round_to_q8_blocks(const float* src, float* dst, std::int64_t n);
}  // namespace cpu

namespace cuda {
// dst is device memory of n floats / halves / bfloat16s; src device memory in `type`'s layout.
void dequantize(GgmlType type, const void* src, float* dst, std::int64_t n, StreamView stream);
void dequantize_to_f16(GgmlType type, const void* src, half_bits* dst, std::int64_t n, StreamView stream);
void dequantize_to_bf16(GgmlType type, const void* src, bf16_bits* dst, std::int64_t n, StreamView stream);
// Elementwise F32 -> F16 / BF16 (activations feeding a cuBLAS GEMM).
void convert_to_f16(const float* src, half_bits* dst, std::int64_t n, StreamView stream);
void convert_to_bf16(const float* src, bf16_bits* dst, std::int64_t n, StreamView stream);
}  // namespace cuda

}  // namespace podworker::kernels

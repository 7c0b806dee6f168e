// Matrix x matrix through cuBLAS for prefill and large batches: Y[tokens, rows] = X[tokens, k] * W^T
// with W [rows, k] (rows = output features, ggml layout), F32 accumulation and F32 output.
// Reference: cpu::matvec (kernels/matvec.h) with batch = tokens.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/device.h"
#include "kernels/ggml_types.h"

namespace podworker::kernels::cuda {

// W and X both in `type` (GgmlType::f16 or GgmlType::bf16), device memory, row-major.
// Y = X W^T + beta * Y  (beta 0 or 1: 1 fuses a residual add).
void gemm(CublasHandle& handle, GgmlType type, const void* w, std::int64_t rows, std::int64_t k,
          const void* x, std::int64_t tokens, float* y, float beta, StreamView stream);

// Quantized (or F32/F16) weights: W is dequantized to BF16 into `scratch` in row tiles, X (F32) is
// converted to BF16, then cuBLAS runs per tile. `scratch` must hold gemm_scratch_bytes(...) bytes.
std::size_t gemm_scratch_bytes(std::int64_t rows, std::int64_t k, std::int64_t tokens);
void gemm(CublasHandle& handle, GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k,
          const float* x, std::int64_t tokens, float* y, float beta, void* scratch, std::size_t scratch_bytes,
          StreamView stream);

}  // namespace podworker::kernels::cuda

// Prefill / large-batch matrix multiply through cuBLAS: Y[tokens, rows] = X[tokens, k] W^T (+ Y).
// cuBLAS is column-major: a row-major [tokens, rows] Y is a column-major [rows, tokens] matrix, so we
// ask for Y^T = W X^T with W transposed (its row-major [rows, k] is column-major [k, rows]).
// Quantized weights are dequantized to BF16 in row tiles into caller-provided scratch first.
#include <cublas_v2.h>

#include <algorithm>
#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/dequantize.h"
#include "kernels/gemm.h"

namespace podworker::kernels::cuda {

namespace {

// Rows of W dequantized per cuBLAS call: bounds the scratch to ~32 MiB of BF16 at k = 4096 while
// keeping each GEMM large enough to run near peak.
constexpr std::int64_t kTileRows = 4096;

void check_cublas(cublasStatus_t status, const char* what) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw CudaError(std::string(what) + ": " + cublasGetStatusName(status), static_cast<int>(status));
  }
}

cudaDataType_t data_type(GgmlType type) {
  if (type == GgmlType::f16) return CUDA_R_16F;
  if (type == GgmlType::bf16) return CUDA_R_16BF;
  throw std::invalid_argument("cuda::gemm: W and X must be F16 or BF16, not " + std::string(type_name(type)));
}

void run_gemm(CublasHandle& handle, cudaDataType_t type, const void* w, std::int64_t rows, std::int64_t k,
              const void* x, std::int64_t tokens, float* y, std::int64_t ldy, float beta, StreamView stream) {
  auto* h = static_cast<cublasHandle_t>(handle.native());
  check_cublas(cublasSetStream(h, detail::native(stream)), "cublasSetStream");
  const float alpha = 1.0f;
  check_cublas(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(rows), static_cast<int>(tokens),
                            static_cast<int>(k), &alpha, w, type, static_cast<int>(k), x, type, static_cast<int>(k),
                            &beta, y, CUDA_R_32F, static_cast<int>(ldy), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

}  // namespace

void gemm(CublasHandle& handle, GgmlType type, const void* w, std::int64_t rows, std::int64_t k, const void* x,
          std::int64_t tokens, float* y, float beta, StreamView stream) {
  if (rows <= 0 || k <= 0 || tokens <= 0) return;
  run_gemm(handle, data_type(type), w, rows, k, x, tokens, y, rows, beta, stream);
}

std::size_t gemm_scratch_bytes(std::int64_t rows, std::int64_t k, std::int64_t tokens) {
  const std::int64_t tile = std::min(rows, kTileRows);
  // 256-byte alignment between the two parts keeps cuBLAS on its fast paths.
  const std::size_t w_bytes = (static_cast<std::size_t>(tile * k) * 2 + 255) / 256 * 256;
  return w_bytes + static_cast<std::size_t>(tokens * k) * 2;
}

void gemm(CublasHandle& handle, GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const float* x,
          std::int64_t tokens, float* y, float beta, void* scratch, std::size_t scratch_bytes, StreamView stream) {
  if (rows <= 0 || k <= 0 || tokens <= 0) return;
  if (scratch_bytes < gemm_scratch_bytes(rows, k, tokens)) throw std::invalid_argument("cuda::gemm: scratch too small");
  const std::int64_t tile = std::min(rows, kTileRows);
  const std::size_t w_bytes = (static_cast<std::size_t>(tile * k) * 2 + 255) / 256 * 256;
  auto* w_tile = static_cast<bf16_bits*>(scratch);
  auto* x_bf16 = reinterpret_cast<bf16_bits*>(static_cast<std::byte*>(scratch) + w_bytes);
  convert_to_bf16(x, x_bf16, tokens * k, stream);
  const std::size_t row_bytes = tensor_bytes(wtype, k);
  for (std::int64_t r0 = 0; r0 < rows; r0 += tile) {
    const std::int64_t n = std::min(tile, rows - r0);
    dequantize_to_bf16(wtype, static_cast<const std::byte*>(w) + r0 * row_bytes, w_tile, n * k, stream);
    // The tile's outputs are columns r0..r0+n of row-major Y: offset r0, leading dimension rows.
    run_gemm(handle, CUDA_R_16BF, w_tile, n, k, x_bf16, tokens, y + r0, rows, beta, stream);
  }
}

}  // namespace podworker::kernels::cuda

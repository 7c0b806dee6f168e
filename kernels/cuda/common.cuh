// Shared helpers of the CUDA kernels: error checks that throw CudaError, the stream view conversion,
// warp reductions and the ggml block decoders used by several kernels.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <type_traits>

#include "kernels/device.h"
#include "kernels/ggml_types.h"

namespace podworker::kernels::cuda::detail {

inline void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw CudaError(std::string(what) + ": " + cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")",
                    static_cast<int>(status));
  }
}

// Called right after every kernel launch: catches bad launch configurations immediately.
inline void check_launch(const char* kernel) { check(cudaGetLastError(), kernel); }

inline cudaStream_t native(StreamView s) { return static_cast<cudaStream_t>(s.handle); }

inline unsigned int blocks_for(std::int64_t n, int threads) {
  return static_cast<unsigned int>((n + threads - 1) / threads);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
  return v;
}

// The end of a mat-vec kernel (matvec.cu, matvec_kquant.cu) whose warp holds R rows times B batch
// columns of per-lane partial sums: each is summed over the warp, and lane 0 writes it to (or,
// accumulating, adds it to) y[b * rows + row0 + r] for the columns below batch and the rows that
// exist.
template <int R, int B>
__device__ __forceinline__ void store_warp_sums(const float (&acc)[R][B], float* __restrict__ y,
                                                std::int64_t rows, std::int64_t row0, int batch,
                                                bool accumulate, int lane) {
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int b = 0; b < B; ++b) {
      if (b < batch) {
        const float sum = warp_sum(acc[r][b]);
        if (lane == 0 && row0 + r < rows) {
          float& out = y[b * rows + row0 + r];
          out = accumulate ? out + sum : sum;
        }
      }
    }
  }
}

// The batch tiles of the mat-vec kernels: each is compiled for B = 1, 2, 4, 8, 16, 32 and 64
// activation columns (kMaxMatvecBatch), and a batch runs on the smallest tile that holds it, so
// seven instantiations serve every batch. Calls launch(std::integral_constant<int, B>{}).
template <class Launch>
void launch_batch_tile(int batch, Launch&& launch) {
  if (batch == 1) return launch(std::integral_constant<int, 1>{});
  if (batch == 2) return launch(std::integral_constant<int, 2>{});
  if (batch <= 4) return launch(std::integral_constant<int, 4>{});
  if (batch <= 8) return launch(std::integral_constant<int, 8>{});
  if (batch <= 16) return launch(std::integral_constant<int, 16>{});
  if (batch <= 32) return launch(std::integral_constant<int, 32>{});
  return launch(std::integral_constant<int, 64>{});
}

// Sum over a block of blockDim.x threads (a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  v = warp_sum(v);
  __syncthreads();  // partial may still be read by a previous call
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = static_cast<int>(blockDim.x) / 32;
  v = lane < warps ? partial[lane] : 0.0f;
  return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v) {
  __shared__ float partial[32];
  const int lane = threadIdx.x % 32;
  const int warp = threadIdx.x / 32;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  const int warps = static_cast<int>(blockDim.x) / 32;
  v = lane < warps ? partial[lane] : -INFINITY;
  return warp_max(v);
}

__device__ __forceinline__ float half_to_float(std::uint16_t h) { return __half2float(__ushort_as_half(h)); }

// Element i (0..block_elements-1) of one block of a quantized type; used by the simple elementwise
// kernels (dequantize, get_rows), not by the bandwidth-critical mat-vec.
template <GgmlType T>
__device__ __forceinline__ float block_element(const void* blocks, std::int64_t i);

template <>
__device__ __forceinline__ float block_element<GgmlType::f32>(const void* b, std::int64_t i) {
  return static_cast<const float*>(b)[i];
}
template <>
__device__ __forceinline__ float block_element<GgmlType::f16>(const void* b, std::int64_t i) {
  return half_to_float(static_cast<const std::uint16_t*>(b)[i]);
}
template <>
__device__ __forceinline__ float block_element<GgmlType::bf16>(const void* b, std::int64_t i) {
  return __uint_as_float(static_cast<std::uint32_t>(static_cast<const std::uint16_t*>(b)[i]) << 16);
}
template <>
__device__ __forceinline__ float block_element<GgmlType::q4_0>(const void* b, std::int64_t i) {
  const BlockQ4_0& blk = static_cast<const BlockQ4_0*>(b)[i / 32];
  const int j = static_cast<int>(i % 32);
  const int q = j < 16 ? (blk.qs[j] & 0xF) : (blk.qs[j - 16] >> 4);
  return half_to_float(blk.d) * static_cast<float>(q - 8);
}
template <>
__device__ __forceinline__ float block_element<GgmlType::q4_1>(const void* b, std::int64_t i) {
  const BlockQ4_1& blk = static_cast<const BlockQ4_1*>(b)[i / 32];
  const int j = static_cast<int>(i % 32);
  const int q = j < 16 ? (blk.qs[j] & 0xF) : (blk.qs[j - 16] >> 4);
  return __fadd_rn(__fmul_rn(half_to_float(blk.d), static_cast<float>(q)), half_to_float(blk.m));
}
template <>
__device__ __forceinline__ float block_element<GgmlType::q8_0>(const void* b, std::int64_t i) {
  const BlockQ8_0& blk = static_cast<const BlockQ8_0*>(b)[i / 32];
  return half_to_float(blk.d) * static_cast<float>(blk.qs[i % 32]);
}
template <>
__device__ __forceinline__ float block_element<GgmlType::q8_1>(const void* b, std::int64_t i) {
  const BlockQ8_1& blk = static_cast<const BlockQ8_1*>(b)[i / 32];
  return half_to_float(blk.d) * static_cast<float>(blk.qs[i % 32]);
}
template <>
__device__ __forceinline__ float block_element<GgmlType::q6_k>(const void* b, std::int64_t i) {
  const BlockQ6_K& blk = static_cast<const BlockQ6_K*>(b)[i / 256];
  const int j = static_cast<int>(i % 256);
  const int half = j / 128;  // which 128-element half
  const int r = j % 128;
  const int quarter = r / 32;  // q1..q4 of the reference loop
  const int l = r % 32;
  const std::uint8_t* ql = blk.ql + half * 64;
  const std::uint8_t* qh = blk.qh + half * 32;
  const std::int8_t* sc = blk.scales + half * 8;
  const int low = quarter == 0 ? (ql[l] & 0xF) : quarter == 1 ? (ql[l + 32] & 0xF) : quarter == 2 ? (ql[l] >> 4)
                                                                                                    : (ql[l + 32] >> 4);
  const int high = (qh[l] >> (2 * quarter)) & 3;
  const int q = (low | (high << 4)) - 32;
  // (d * scale) * q, rounded twice as ggml and the CPU reference do.
  return __fmul_rn(__fmul_rn(half_to_float(blk.d), static_cast<float>(sc[l / 16 + 2 * quarter])), static_cast<float>(q));
}

}  // namespace podworker::kernels::cuda::detail

// Device decoders of one element of the K-quant blocks (Q4_K, Q5_K) and Q5_0, for the elementwise
// kernels (dequantize, get_rows); the layouts are kernels/ggml_types.h's. Each rounds exactly as the
// CPU reference (kernels/cpu/kquant.cpp, ggml's order: (d * scale) * q - dmin * min, no fused
// multiply-add), so a dequantized weight is the same float on both. The CUDA backend dequantizes
// these types to F16 at load and multiplies them with cuBLAS.
#pragma once

#include "kernels/cuda/common.cuh"

namespace podworker::kernels::cuda::detail {

// Scale and min of sub-block j (0..7) of a Q4_K / Q5_K block (kernels/kquant.h's scale_min_k4).
__device__ __forceinline__ void scale_min_k4(int j, const std::uint8_t* q, int& d, int& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
    m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
  }
}

template <>
__device__ __forceinline__ float block_element<GgmlType::q5_0>(const void* b, std::int64_t i) {
  const BlockQ5_0& blk = static_cast<const BlockQ5_0*>(b)[i / 32];
  const int j = static_cast<int>(i % 32);
  const std::uint32_t qh = static_cast<std::uint32_t>(blk.qh[0]) | (static_cast<std::uint32_t>(blk.qh[1]) << 8) |
                           (static_cast<std::uint32_t>(blk.qh[2]) << 16) | (static_cast<std::uint32_t>(blk.qh[3]) << 24);
  const int low = j < 16 ? (blk.qs[j] & 0xF) : (blk.qs[j - 16] >> 4);
  const int q = (low | static_cast<int>(((qh >> j) & 1u) << 4)) - 16;
  return __fmul_rn(static_cast<float>(q), half_to_float(blk.d));
}

// Element j of a Q4_K / Q5_K super-block: sub-block j / 32 has its 4 low bits in the low (even
// sub-block) or high (odd) nibbles of qs[32 * (sub / 2) + l].
template <bool kFiveBits, class Block>
__device__ __forceinline__ float k4_element(const Block& blk, int j) {
  const int sub = j / 32, l = j % 32;
  int sc = 0, m = 0;
  scale_min_k4(sub, blk.scales, sc, m);
  int q = (blk.qs[(sub / 2) * 32 + l] >> (4 * (sub % 2))) & 0xF;
  if constexpr (kFiveBits) q |= ((blk.qh[l] >> sub) & 1) << 4;
  const float d1 = __fmul_rn(half_to_float(blk.d), static_cast<float>(sc));
  const float m1 = __fmul_rn(half_to_float(blk.dmin), static_cast<float>(m));
  return __fsub_rn(__fmul_rn(d1, static_cast<float>(q)), m1);
}

template <>
__device__ __forceinline__ float block_element<GgmlType::q4_k>(const void* b, std::int64_t i) {
  return k4_element<false>(static_cast<const BlockQ4_K*>(b)[i / 256], static_cast<int>(i % 256));
}

template <>
__device__ __forceinline__ float block_element<GgmlType::q5_k>(const void* b, std::int64_t i) {
  return k4_element<true>(static_cast<const BlockQ5_K*>(b)[i / 256], static_cast<int>(i % 256));
}

}  // namespace podworker::kernels::cuda::detail

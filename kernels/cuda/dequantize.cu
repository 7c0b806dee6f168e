// Dequantization of ggml blocks to F32 / F16 / BF16, and F32 -> F16 / BF16 conversion. One thread per
// output element: these run once per weight at load time or per GEMM tile, and are bandwidth-bound on
// the (larger) output anyway.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kquant.cuh"
#include "kernels/dequantize.h"

#include <stdexcept>

namespace podworker::kernels::cuda {

namespace {

// Output kinds: F16 and BF16 share the storage type (uint16_t), so the kind is a separate parameter.
enum class OutKind { f32, f16, bf16 };

template <OutKind K>
__device__ __forceinline__ auto store_as(float v) {
  if constexpr (K == OutKind::f32) {
    return v;
  } else if constexpr (K == OutKind::f16) {
    return __half_as_ushort(__float2half_rn(v));
  } else {
    return __bfloat16_as_ushort(__float2bfloat16_rn(v));
  }
}

template <GgmlType T, OutKind K, class Out>
__global__ void dequantize_kernel(const void* __restrict__ src, Out* __restrict__ dst, std::int64_t n) {
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    dst[i] = store_as<K>(detail::block_element<T>(src, i));
  }
}

template <GgmlType T, OutKind K, class Out>
void launch(const void* src, Out* dst, std::int64_t n, StreamView stream) {
  constexpr int threads = 256;
  const unsigned int blocks = std::min<unsigned int>(detail::blocks_for(n, threads), 65535u * 4);
  dequantize_kernel<T, K, Out><<<blocks, threads, 0, detail::native(stream)>>>(src, dst, n);
  detail::check_launch("dequantize_kernel");
}

template <OutKind K, class Out>
void dispatch(GgmlType type, const void* src, Out* dst, std::int64_t n, StreamView stream) {
  (void)tensor_bytes(type, n);  // validates n against the block size
  if (n == 0) return;
  switch (type) {
    case GgmlType::f32: return launch<GgmlType::f32, K>(src, dst, n, stream);
    case GgmlType::f16: return launch<GgmlType::f16, K>(src, dst, n, stream);
    case GgmlType::bf16: return launch<GgmlType::bf16, K>(src, dst, n, stream);
    case GgmlType::q4_0: return launch<GgmlType::q4_0, K>(src, dst, n, stream);
    case GgmlType::q4_1: return launch<GgmlType::q4_1, K>(src, dst, n, stream);
    case GgmlType::q8_0: return launch<GgmlType::q8_0, K>(src, dst, n, stream);
    case GgmlType::q8_1: return launch<GgmlType::q8_1, K>(src, dst, n, stream);
    case GgmlType::q6_k: return launch<GgmlType::q6_k, K>(src, dst, n, stream);
    case GgmlType::q5_0: return launch<GgmlType::q5_0, K>(src, dst, n, stream);
    case GgmlType::q4_k: return launch<GgmlType::q4_k, K>(src, dst, n, stream);
    case GgmlType::q5_k: return launch<GgmlType::q5_k, K>(src, dst, n, stream);
    default: break;
  }
  throw std::invalid_argument("cuda::dequantize: unsupported type");
}

}  // namespace

void dequantize(GgmlType type, const void* src, float* dst, std::int64_t n, StreamView stream) {
  dispatch<OutKind::f32>(type, src, dst, n, stream);
}
void dequantize_to_f16(GgmlType type, const void* src, half_bits* dst, std::int64_t n, StreamView stream) {
  dispatch<OutKind::f16>(type, src, dst, n, stream);
}
void dequantize_to_bf16(GgmlType type, const void* src, bf16_bits* dst, std::int64_t n, StreamView stream) {
  dispatch<OutKind::bf16>(type, src, dst, n, stream);
}
void convert_to_f16(const float* src, half_bits* dst, std::int64_t n, StreamView stream) {
  if (n > 0) launch<GgmlType::f32, OutKind::f16>(src, dst, n, stream);
}
void convert_to_bf16(const float* src, bf16_bits* dst, std::int64_t n, StreamView stream) {
  if (n > 0) launch<GgmlType::f32, OutKind::bf16>(src, dst, n, stream);
}

}  // namespace podworker::kernels::cuda

// Quantized matrix x vector for decode (batch 1) and for a small batch of sequences (2..64) that share
// one pass over the weights. y[b, r] = sum_j W[r, j] x[b, j] (+ y[b, r]).
//
// Memory-bound design: each warp owns R consecutive rows; lane l handles the ggml blocks l, l+32, ...
// of those rows, so a warp's loads cover contiguous bytes of each row (coalesced), and the x chunk
// for a block is loaded once (float4 loads from L1) and reused for the R rows. Block bytes are read as
// aligned 32-bit words; Q4_0/Q8_0 blocks (18/34 bytes) are only 2-byte aligned, so their words are
// reassembled with funnel shifts instead of falling back to 16-bit loads. Per-lane partial sums are
// reduced with warp shuffles once per row at the end. Q4_0/Q4_1 use d * sum(q x) + m * sum(x) so
// the offset costs one multiply per block.
#include "kernels/cuda/common.cuh"
#include "kernels/dequantize.h"
#include "kernels/matvec.h"

#include <stdexcept>
#include <string>

namespace podworker::kernels::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;

// 32 activations of one block for one sequence, as floats.
struct XChunk {
  float4 v[8];  // elements 4i..4i+3 in v[i]
};

__device__ __forceinline__ void load_x(const float* __restrict__ x, XChunk& c) {
  const float4* p = reinterpret_cast<const float4*>(x);
#pragma unroll
  for (int i = 0; i < 8; ++i) c.v[i] = __ldg(p + i);
}

__device__ __forceinline__ void load_x(const half_bits* __restrict__ x, XChunk& c) {
  const uint4* p = reinterpret_cast<const uint4*>(x);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const uint4 u = __ldg(p + i);
    const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&u.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&u.y));
    const float2 cc = __half22float2(*reinterpret_cast<const __half2*>(&u.z));
    const float2 d = __half22float2(*reinterpret_cast<const __half2*>(&u.w));
    c.v[2 * i] = make_float4(a.x, a.y, b.x, b.y);
    c.v[2 * i + 1] = make_float4(cc.x, cc.y, d.x, d.y);
  }
}

// Reads `N` 32-bit words starting at byte address `p`, which is only 2-byte aligned: loads the aligned
// words around it and shifts. When p is misaligned the last two bytes wanted sit at base + 4N, read
// with a 16-bit load: a 32-bit load there would touch two bytes past the block (past the end of the
// buffer for the last block of a tensor whose rows have an odd number of blocks).
template <int N>
__device__ __forceinline__ void load_words_2aligned(const std::uint8_t* p, std::uint32_t (&out)[N]) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  const std::uint32_t* base = reinterpret_cast<const std::uint32_t*>(addr & ~std::uintptr_t{3});
  const bool misaligned = (addr & 2u) != 0;
  std::uint32_t w[N + 1];
#pragma unroll
  for (int i = 0; i < N; ++i) w[i] = __ldg(base + i);
  w[N] = misaligned ? static_cast<std::uint32_t>(__ldg(reinterpret_cast<const std::uint16_t*>(base + N))) : 0u;
  const unsigned shift = misaligned ? 16u : 0u;
#pragma unroll
  for (int i = 0; i < N; ++i) out[i] = __funnelshift_r(w[i], w[i + 1], shift);
}

// Weight block decoders: load() pulls one block's raw words into registers, dot() multiplies them with
// one XChunk. Nibble order (Q4): byte i holds element i (low) and element i + 16 (high).
template <GgmlType T>
struct WBlock;

template <>
struct WBlock<GgmlType::q4_1> {
  static constexpr int kBytes = 20;
  float d, m;
  std::uint32_t q[4];
  __device__ __forceinline__ void load(const std::uint8_t* p) {
    const std::uint32_t* w = reinterpret_cast<const std::uint32_t*>(p);  // 20-byte blocks stay 4-aligned
    const std::uint32_t dm = __ldg(w);
    d = detail::half_to_float(static_cast<std::uint16_t>(dm & 0xffffu));
    m = detail::half_to_float(static_cast<std::uint16_t>(dm >> 16));
#pragma unroll
    for (int i = 0; i < 4; ++i) q[i] = __ldg(w + 1 + i);
  }
  __device__ __forceinline__ float dot(const XChunk& x) const {
    float qdot = 0.0f, xsum = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float4 lo = x.v[i];
      const float4 hi = x.v[i + 4];
      const std::uint32_t w = q[i];
      qdot += static_cast<float>(w & 0xF) * lo.x + static_cast<float>((w >> 8) & 0xF) * lo.y +
              static_cast<float>((w >> 16) & 0xF) * lo.z + static_cast<float>((w >> 24) & 0xF) * lo.w;
      qdot += static_cast<float>((w >> 4) & 0xF) * hi.x + static_cast<float>((w >> 12) & 0xF) * hi.y +
              static_cast<float>((w >> 20) & 0xF) * hi.z + static_cast<float>((w >> 28) & 0xF) * hi.w;
      xsum += (lo.x + lo.y) + (lo.z + lo.w) + (hi.x + hi.y) + (hi.z + hi.w);
    }
    return d * qdot + m * xsum;
  }
};

template <>
struct WBlock<GgmlType::q4_0> {
  static constexpr int kBytes = 18;
  float d;
  std::uint32_t q[4];
  __device__ __forceinline__ void load(const std::uint8_t* p) {
    d = detail::half_to_float(__ldg(reinterpret_cast<const std::uint16_t*>(p)));
    load_words_2aligned<4>(p + 2, q);
  }
  __device__ __forceinline__ float dot(const XChunk& x) const {
    float qdot = 0.0f, xsum = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float4 lo = x.v[i];
      const float4 hi = x.v[i + 4];
      const std::uint32_t w = q[i];
      qdot += static_cast<float>(w & 0xF) * lo.x + static_cast<float>((w >> 8) & 0xF) * lo.y +
              static_cast<float>((w >> 16) & 0xF) * lo.z + static_cast<float>((w >> 24) & 0xF) * lo.w;
      qdot += static_cast<float>((w >> 4) & 0xF) * hi.x + static_cast<float>((w >> 12) & 0xF) * hi.y +
              static_cast<float>((w >> 20) & 0xF) * hi.z + static_cast<float>((w >> 28) & 0xF) * hi.w;
      xsum += (lo.x + lo.y) + (lo.z + lo.w) + (hi.x + hi.y) + (hi.z + hi.w);
    }
    return d * (qdot - 8.0f * xsum);
  }
};

template <>
struct WBlock<GgmlType::q8_0> {
  static constexpr int kBytes = 34;
  float d;
  std::uint32_t q[8];
  __device__ __forceinline__ void load(const std::uint8_t* p) {
    d = detail::half_to_float(__ldg(reinterpret_cast<const std::uint16_t*>(p)));
    load_words_2aligned<8>(p + 2, q);
  }
  __device__ __forceinline__ float dot(const XChunk& x) const {
    float qdot = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float4 v = x.v[i];
      const int w = static_cast<int>(q[i]);
      // Sign-extending byte extraction: (w << 24) >> 24 etc.
      qdot += static_cast<float>((w << 24) >> 24) * v.x + static_cast<float>((w << 16) >> 24) * v.y +
              static_cast<float>((w << 8) >> 24) * v.z + static_cast<float>(w >> 24) * v.w;
    }
    return d * qdot;
  }
};

template <>
struct WBlock<GgmlType::f16> {
  static constexpr int kBytes = 64;
  uint4 q[4];
  __device__ __forceinline__ void load(const std::uint8_t* p) {
    const uint4* w = reinterpret_cast<const uint4*>(p);  // rows of 32k halves keep 16-byte alignment
#pragma unroll
    for (int i = 0; i < 4; ++i) q[i] = __ldg(w + i);
  }
  __device__ __forceinline__ float dot(const XChunk& x) const {
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const float2 a = __half22float2(*reinterpret_cast<const __half2*>(&q[i].x));
      const float2 b = __half22float2(*reinterpret_cast<const __half2*>(&q[i].y));
      const float2 c = __half22float2(*reinterpret_cast<const __half2*>(&q[i].z));
      const float2 e = __half22float2(*reinterpret_cast<const __half2*>(&q[i].w));
      const float4 v0 = x.v[2 * i];
      const float4 v1 = x.v[2 * i + 1];
      sum += a.x * v0.x + a.y * v0.y + b.x * v0.z + b.y * v0.w;
      sum += c.x * v1.x + c.y * v1.y + e.x * v1.z + e.y * v1.w;
    }
    return sum;
  }
};

template <>
struct WBlock<GgmlType::f32> {
  static constexpr int kBytes = 128;
  float4 q[8];
  __device__ __forceinline__ void load(const std::uint8_t* p) {
    const float4* w = reinterpret_cast<const float4*>(p);
#pragma unroll
    for (int i = 0; i < 8; ++i) q[i] = __ldg(w + i);
  }
  __device__ __forceinline__ float dot(const XChunk& x) const {
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < 8; ++i) sum += q[i].x * x.v[i].x + q[i].y * x.v[i].y + q[i].z * x.v[i].z + q[i].w * x.v[i].w;
    return sum;
  }
};

// R rows per warp, up to B sequences (batch <= B; the tail is masked by a uniform branch).
template <GgmlType T, int R, int B, class XT>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    matvec_kernel(const std::uint8_t* __restrict__ w, std::int64_t rows, std::int64_t k, const XT* __restrict__ x,
                  float* __restrict__ y, int batch, bool accumulate) {
  const int lane = static_cast<int>(threadIdx.x % 32);
  const std::int64_t warp = static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const std::int64_t row0 = warp * R;
  if (row0 >= rows) return;
  const std::int64_t nb = k / 32;
  const std::int64_t row_bytes = nb * WBlock<T>::kBytes;

  const std::uint8_t* row_ptr[R];
#pragma unroll
  for (int r = 0; r < R; ++r) row_ptr[r] = w + min(row0 + r, rows - 1) * row_bytes;  // tail rows re-read the last

  float acc[R][B];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int b = 0; b < B; ++b) acc[r][b] = 0.0f;
  }

  // Two blocks per lane per iteration: both are loaded before either is used, which doubles the bytes
  // each warp has in flight (what a bandwidth-bound kernel needs on a GPU with this much bandwidth).
  constexpr int U = WBlock<T>::kBytes >= 64 ? 1 : 2;  // F16/F32 blocks are already 64/128 bytes per lane
  for (std::int64_t blk0 = lane; blk0 < nb; blk0 += 32 * U) {
    WBlock<T> wb[U][R];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const std::int64_t blk = blk0 + 32 * u;
      if (blk < nb) {
#pragma unroll
        for (int r = 0; r < R; ++r) wb[u][r].load(row_ptr[r] + blk * WBlock<T>::kBytes);
      }
    }
#pragma unroll
    for (int u = 0; u < U; ++u) {
      const std::int64_t blk = blk0 + 32 * u;
      if (blk >= nb) break;
#pragma unroll
      for (int b = 0; b < B; ++b) {
        if (b < batch) {
          XChunk xc;
          load_x(x + b * k + blk * 32, xc);
#pragma unroll
          for (int r = 0; r < R; ++r) acc[r][b] += wb[u][r].dot(xc);
        }
      }
    }
  }

  detail::store_warp_sums(acc, y, rows, row0, batch, accumulate, lane);
}

template <GgmlType T, int R, int B, class XT>
void launch(const void* w, std::int64_t rows, std::int64_t k, const XT* x, float* y, int batch, bool accumulate,
            StreamView stream) {
  // F16/F32 blocks take 16/32 registers each: more than two rows per warp would spill.
  constexpr int kR = WBlock<T>::kBytes >= 64 ? (R < 2 ? R : 2) : R;
  const std::int64_t warps = (rows + kR - 1) / kR;
  const unsigned int blocks = detail::blocks_for(warps, kWarpsPerBlock);
  matvec_kernel<T, kR, B, XT><<<blocks, kWarpsPerBlock * 32, 0, detail::native(stream)>>>(
      static_cast<const std::uint8_t*>(w), rows, k, x, y, batch, accumulate);
  detail::check_launch("matvec_kernel");
}

// Rows per warp: each x chunk a lane loads serves R rows, so R cuts the activation traffic (from L1/L2)
// by R; the accumulators (R * B registers) bound it as the batch grows.
constexpr int rows_per_warp(int batch_tile) {
  return batch_tile <= 2 ? 2 : batch_tile <= 8 ? 4 : batch_tile <= 32 ? 2 : 1;
}

template <GgmlType T, class XT>
void launch_batch(const void* w, std::int64_t rows, std::int64_t k, const XT* x, float* y, int batch,
                  bool accumulate, StreamView stream) {
  detail::launch_batch_tile(batch, [&](auto tile) {
    constexpr int B = decltype(tile)::value;
    launch<T, rows_per_warp(B), B>(w, rows, k, x, y, batch, accumulate, stream);
  });
}

template <class XT>
void dispatch(GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const XT* x, float* y, int batch,
              bool accumulate, StreamView stream) {
  if (rows < 0 || k < 0 || k % 32 != 0 || batch < 1 || batch > kMaxMatvecBatch) {
    throw std::invalid_argument("cuda::matvec: bad dimensions (rows " + std::to_string(rows) + ", k " +
                                std::to_string(k) + ", batch " + std::to_string(batch) + ")");
  }
  if (rows == 0) return;
  // Blocks are read as aligned words (F16/F32 rows as 16-byte vectors), activations as 16-byte vectors.
  const std::uintptr_t w_align = (wtype == GgmlType::f16 || wtype == GgmlType::f32) ? 16 : 4;
  if (reinterpret_cast<std::uintptr_t>(w) % w_align != 0 || reinterpret_cast<std::uintptr_t>(x) % 16 != 0) {
    throw std::invalid_argument("cuda::matvec: weights or activations are not aligned");
  }
  switch (wtype) {
    case GgmlType::q4_0: return launch_batch<GgmlType::q4_0>(w, rows, k, x, y, batch, accumulate, stream);
    case GgmlType::q4_1: return launch_batch<GgmlType::q4_1>(w, rows, k, x, y, batch, accumulate, stream);
    case GgmlType::q8_0: return launch_batch<GgmlType::q8_0>(w, rows, k, x, y, batch, accumulate, stream);
    case GgmlType::f16: return launch_batch<GgmlType::f16>(w, rows, k, x, y, batch, accumulate, stream);
    case GgmlType::f32: return launch_batch<GgmlType::f32>(w, rows, k, x, y, batch, accumulate, stream);
    default: break;
  }
  throw std::invalid_argument("cuda::matvec: unsupported weight type " + std::string(type_name(wtype)));
}

}  // namespace

void matvec(GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const float* x, float* y, int batch,
            bool accumulate, StreamView stream) {
  dispatch(wtype, w, rows, k, x, y, batch, accumulate, stream);
}

void matvec(GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const half_bits* x, float* y,
            int batch, bool accumulate, StreamView stream) {
  dispatch(wtype, w, rows, k, x, y, batch, accumulate, stream);
}

}  // namespace podworker::kernels::cuda

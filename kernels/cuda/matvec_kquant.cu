// K-quant mat-vec (kernels/matvec_kquant.h): y[b, r] = sum_j W[r, j] x[b, j] (+ y[b, r]) with W in
// Q4_K, Q5_K or Q6_K super-blocks of 256 elements, read in place.
//
// Layout of the work, as kernels/cuda/matvec.cu: each warp owns R consecutive rows and walks their
// super-blocks one at a time; the 32 lanes split one super-block 8 elements each, so a warp's loads
// of a super-block's quant bytes are one contiguous, coalesced span, and each lane's activations
// (two float4 or four float2 loads, from L1/L2) serve all R rows. Per-lane partial sums are reduced
// with warp shuffles once per row at the end.
//
// Which 8 elements a lane takes follows the bit layout, so every lane reads whole words:
//  Q4_K / Q5_K: lane l reads the 4 bytes qs[32p + i0 .. +3] (p = l / 8, i0 = 4 (l % 8)): their low
//    nibbles are elements 64p + i0 .. +3 (sub-block 2p), the high nibbles 64p + 32 + i0 .. +3
//    (sub-block 2p + 1). Q5_K's fifth bits are bits 2p and 2p + 1 of qh[i0 .. i0 + 3].
//  Q6_K: lane l takes positions l0 = 2 (l % 16), l0 + 1 of half h = l / 16: bytes ql[64h + l0],
//    ql[64h + 32 + l0] and qh[32h + l0] (and the next of each) hold elements 128h + 32 t + l0 (+1)
//    for t = 0..3 (the reference's q1..q4), scaled by scales[8h + l0 / 16 + 2t].
// Each lane sums d_sub * sum(q x) - m_sub * sum(x) per sub-block: the weights are the values the
// CPU reference dequantizes, the sums in F32 in another order.
#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/matvec.h"
#include "kernels/matvec_kquant.h"

namespace podworker::kernels::cuda {

namespace {

constexpr int kWarpsPerBlock = 4;

// Byte i (0..11) of the packed 6-bit scales and mins, held as three words.
__device__ __forceinline__ int scale_byte(const std::uint32_t (&s)[3], int i) {
  return static_cast<int>((s[i >> 2] >> (8 * (i & 3))) & 0xFFu);
}

// kernels/kquant.h's scale_min_k4 on the word copy.
__device__ __forceinline__ void scale_min(const std::uint32_t (&s)[3], int j, float& sc, float& m) {
  if (j < 4) {
    sc = static_cast<float>(scale_byte(s, j) & 63);
    m = static_cast<float>(scale_byte(s, j + 4) & 63);
  } else {
    sc = static_cast<float>((scale_byte(s, j + 4) & 0xF) | ((scale_byte(s, j - 4) >> 6) << 4));
    m = static_cast<float>((scale_byte(s, j + 4) >> 4) | ((scale_byte(s, j) >> 6) << 4));
  }
}

// One lane's 8 activations of a super-block, in the order its weight part dot()s them.
struct XPart {
  float v[8];
};

// Q4_K and Q5_K share everything but the fifth bit.
template <bool kFive>
struct K4Part {
  static constexpr int kBytes = kFive ? 176 : 144;
  static constexpr int kQsWord = kFive ? 12 : 4;  // qs starts at byte 48 (Q5_K) or 16 (Q4_K)
  std::uint32_t dm;                               // d (low half) and dmin (high half)
  std::uint32_t s[3];                             // the 12 scale bytes
  std::uint32_t q;                                // qs[32p + i0 .. +3]
  std::uint32_t h;                                // Q5_K: qh[i0 .. +3]

  __device__ __forceinline__ void load(const std::uint8_t* block, int lane) {
    const std::uint32_t* w =
        reinterpret_cast<const std::uint32_t*>(block);  // 144 / 176-byte blocks: 4-aligned
    dm = __ldg(w);
#pragma unroll
    for (int i = 0; i < 3; ++i) s[i] = __ldg(w + 1 + i);
    q = __ldg(w + kQsWord + (lane / 8) * 8 + lane % 8);
    h = 0u;
    if constexpr (kFive) h = __ldg(w + 4 + lane % 8);
  }

  static __device__ __forceinline__ void load_x(const float* __restrict__ xsb, int lane, XPart& x) {
    const int p = lane / 8, i0 = 4 * (lane % 8);
    const float4 lo = __ldg(reinterpret_cast<const float4*>(xsb + 64 * p + i0));
    const float4 hi = __ldg(reinterpret_cast<const float4*>(xsb + 64 * p + 32 + i0));
    x.v[0] = lo.x, x.v[1] = lo.y, x.v[2] = lo.z, x.v[3] = lo.w;
    x.v[4] = hi.x, x.v[5] = hi.y, x.v[6] = hi.z, x.v[7] = hi.w;
  }

  __device__ __forceinline__ float dot(const XPart& x, int lane) const {
    const int p = lane / 8;
    float sc0 = 0, m0 = 0, sc1 = 0, m1 = 0;
    scale_min(s, 2 * p, sc0, m0);
    scale_min(s, 2 * p + 1, sc1, m1);
    const float d = detail::half_to_float(static_cast<std::uint16_t>(dm & 0xFFFFu));
    const float dmin = detail::half_to_float(static_cast<std::uint16_t>(dm >> 16));
    float qlo = 0, qhi = 0, xlo = 0, xhi = 0;
#pragma unroll
    for (int b = 0; b < 4; ++b) {
      int lo = static_cast<int>((q >> (8 * b)) & 0xFu);
      int hi = static_cast<int>((q >> (8 * b + 4)) & 0xFu);
      if (kFive) {
        const std::uint32_t hb = h >> (8 * b);
        lo |= static_cast<int>((hb >> (2 * p)) & 1u) << 4;
        hi |= static_cast<int>((hb >> (2 * p + 1)) & 1u) << 4;
      }
      qlo += static_cast<float>(lo) * x.v[b];
      qhi += static_cast<float>(hi) * x.v[4 + b];
      xlo += x.v[b];
      xhi += x.v[4 + b];
    }
    // (d * sc) and (dmin * m) rounded as the reference rounds them.
    return __fmul_rn(d, sc0) * qlo - __fmul_rn(dmin, m0) * xlo + __fmul_rn(d, sc1) * qhi -
           __fmul_rn(dmin, m1) * xhi;
  }
};

struct Q6Part {
  static constexpr int kBytes = 210;
  std::uint16_t ql_a, ql_b, qh;  // ql[64h + l0 ..+1], ql[64h + 32 + l0 ..+1], qh[32h + l0 ..+1]
  std::uint16_t sc01, sc23;      // scales for t = 0, 1 and t = 2, 3 (int8 each)
  std::uint16_t d;

  __device__ __forceinline__ void load(const std::uint8_t* block, int lane) {
    // 210-byte blocks are only 2-aligned: 16-bit loads throughout.
    const int h = lane / 16, l0 = 2 * (lane % 16), is = l0 / 16;
    const auto* u16 = reinterpret_cast<const std::uint16_t*>(block);
    ql_a = __ldg(u16 + (64 * h + l0) / 2);
    ql_b = __ldg(u16 + (64 * h + 32 + l0) / 2);
    qh = __ldg(u16 + (128 + 32 * h + l0) / 2);
    // scales[8h + is + 2t], t = 0..3: bytes 0, 2, 4, 6 from there (int8, kept as their bits).
    const auto* sc = reinterpret_cast<const unsigned char*>(block + 192 + 8 * h + is);
    sc01 = static_cast<std::uint16_t>(__ldg(sc + 0) | (__ldg(sc + 2) << 8));
    sc23 = static_cast<std::uint16_t>(__ldg(sc + 4) | (__ldg(sc + 6) << 8));
    d = __ldg(u16 + 104);
  }

  static __device__ __forceinline__ void load_x(const float* __restrict__ xsb, int lane, XPart& x) {
    const int h = lane / 16, l0 = 2 * (lane % 16);
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      const float2 v = __ldg(reinterpret_cast<const float2*>(xsb + 128 * h + 32 * t + l0));
      x.v[2 * t] = v.x;
      x.v[2 * t + 1] = v.y;
    }
  }

  __device__ __forceinline__ float dot(const XPart& x, int) const {
    const float dd = detail::half_to_float(d);
    const int scales[4] = {
        static_cast<std::int8_t>(sc01 & 0xFF), static_cast<std::int8_t>(sc01 >> 8),
        static_cast<std::int8_t>(sc23 & 0xFF), static_cast<std::int8_t>(sc23 >> 8)};
    float sum = 0;
#pragma unroll
    for (int t = 0; t < 4; ++t) {
      // t = 0, 1: low nibbles of ql_a, ql_b; t = 2, 3: their high nibbles. qh bits 2t, 2t + 1.
      const std::uint16_t src = (t % 2 == 0) ? ql_a : ql_b;
      const int shift = t < 2 ? 0 : 4;
      float qx = 0;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const int low = (src >> (8 * e + shift)) & 0xF;
        const int high = (qh >> (8 * e + 2 * t)) & 3;
        qx += static_cast<float>((low | (high << 4)) - 32) * x.v[2 * t + e];
      }
      sum += __fmul_rn(dd, static_cast<float>(scales[t])) * qx;
    }
    return sum;
  }
};

template <GgmlType T>
struct PartOf;
template <>
struct PartOf<GgmlType::q4_k> {
  using type = K4Part<false>;
};
template <>
struct PartOf<GgmlType::q5_k> {
  using type = K4Part<true>;
};
template <>
struct PartOf<GgmlType::q6_k> {
  using type = Q6Part;
};

// R rows per warp, up to B sequences (batch <= B; the tail is masked by a uniform branch).
template <GgmlType T, int R, int B>
__global__ void __launch_bounds__(kWarpsPerBlock * 32)
    kquant_matvec_kernel(const std::uint8_t* __restrict__ w, std::int64_t rows, std::int64_t k,
                         const float* __restrict__ x, float* __restrict__ y, int batch,
                         bool accumulate) {
  using Part = typename PartOf<T>::type;
  const int lane = static_cast<int>(threadIdx.x % 32);
  const std::int64_t warp =
      static_cast<std::int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / 32;
  const std::int64_t row0 = warp * R;
  if (row0 >= rows) return;
  const std::int64_t nsb = k / 256;
  const std::int64_t row_bytes = nsb * Part::kBytes;

  const std::uint8_t* row_ptr[R];
#pragma unroll
  for (int r = 0; r < R; ++r)
    row_ptr[r] = w + min(row0 + r, rows - 1) * row_bytes;  // tail rows re-read the last

  float acc[R][B];
#pragma unroll
  for (int r = 0; r < R; ++r) {
#pragma unroll
    for (int b = 0; b < B; ++b) acc[r][b] = 0.0f;
  }

  for (std::int64_t sb = 0; sb < nsb; ++sb) {
    Part part[R];
#pragma unroll
    for (int r = 0; r < R; ++r) part[r].load(row_ptr[r] + sb * Part::kBytes, lane);
#pragma unroll
    for (int b = 0; b < B; ++b) {
      if (b < batch) {
        XPart xp;
        Part::load_x(x + b * k + sb * 256, lane, xp);
#pragma unroll
        for (int r = 0; r < R; ++r) acc[r][b] += part[r].dot(xp, lane);
      }
    }
  }

  detail::store_warp_sums(acc, y, rows, row0, batch, accumulate, lane);
}

template <GgmlType T, int R, int B>
void launch(const void* w, std::int64_t rows, std::int64_t k, const float* x, float* y, int batch,
            bool accumulate, StreamView stream) {
  const std::int64_t warps = (rows + R - 1) / R;
  const unsigned int blocks = detail::blocks_for(warps, kWarpsPerBlock);
  kquant_matvec_kernel<T, R, B><<<blocks, kWarpsPerBlock * 32, 0, detail::native(stream)>>>(
      static_cast<const std::uint8_t*>(w), rows, k, x, y, batch, accumulate);
  detail::check_launch("kquant_matvec_kernel");
}

// Rows per warp as matvec.cu chooses them: R rows share each activation load; R * B accumulators.
constexpr int rows_per_warp(int batch_tile) {
  return batch_tile <= 8 ? 2 : 1;
}

template <GgmlType T>
void launch_batch(const void* w, std::int64_t rows, std::int64_t k, const float* x, float* y,
                  int batch, bool accumulate, StreamView stream) {
  detail::launch_batch_tile(batch, [&](auto tile) {
    constexpr int B = decltype(tile)::value;
    launch<T, rows_per_warp(B), B>(w, rows, k, x, y, batch, accumulate, stream);
  });
}

}  // namespace

void matvec_kquant(GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const float* x,
                   float* y, int batch, bool accumulate, StreamView stream) {
  if (rows < 0 || k < 0 || k % 256 != 0 || batch < 1 || batch > kMaxMatvecBatch) {
    throw std::invalid_argument("cuda::matvec_kquant: bad dimensions (rows " +
                                std::to_string(rows) + ", k " + std::to_string(k) + ", batch " +
                                std::to_string(batch) + ")");
  }
  const std::uintptr_t w_align = wtype == GgmlType::q6_k ? 2 : 4;
  if (reinterpret_cast<std::uintptr_t>(w) % w_align != 0 ||
      reinterpret_cast<std::uintptr_t>(x) % 16 != 0) {
    throw std::invalid_argument("cuda::matvec_kquant: weights or activations are not aligned");
  }
  switch (wtype) {
    case GgmlType::q4_k:
      if (rows > 0) launch_batch<GgmlType::q4_k>(w, rows, k, x, y, batch, accumulate, stream);
      return;
    case GgmlType::q5_k:
      if (rows > 0) launch_batch<GgmlType::q5_k>(w, rows, k, x, y, batch, accumulate, stream);
      return;
    case GgmlType::q6_k:
      if (rows > 0) launch_batch<GgmlType::q6_k>(w, rows, k, x, y, batch, accumulate, stream);
      return;
    default:
      break;
  }
  throw std::invalid_argument("cuda::matvec_kquant: unsupported weight type " +
                              std::string(type_name(wtype)));
}

}  // namespace podworker::kernels::cuda

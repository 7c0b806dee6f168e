// AVX2 + FMA + F16C versions of the K-quant and Q5_0 products (matmul_kquant.h has the arithmetic;
// matmul_kquant.cpp the portable reference they are tested against and the dispatch). Compiled
// with those instruction sets and called only after a run-time check. u8×s8 products go through
// vpmaddubsw + vpmaddwd as in matmul_simd.inc; every weight block is unpacked once per row and
// used for up to 4 activation columns.
#include "llm/cpu/matmul_kquant.h"

#if defined(PODWORKER_LLM_X86) && defined(__AVX2__)
#include <immintrin.h>

#include <cstring>

namespace podworker::llm::cpu {

namespace {

using kernels::BlockQ4_K;
using kernels::BlockQ5_0;
using kernels::BlockQ5_K;
using kernels::BlockQ6_K;

constexpr int kMaxCols = 4;

// All 8 sub-block scales and offsets of a Q4_K / Q5_K super-block, d·sc_j and dmin·m_j with sc_j,
// m_j as kernels/kquant.h's scale_min_k4 reads them (the same floats), but unpacked with ggml's
// word masks and converted 8 at a time: one j at a time, the branchy scalar unpacking cost a third
// of the product's instructions.
inline void k4_scales(const std::uint8_t* q, float d, float dmin, float* scale, float* offset) {
  std::uint32_t u[4];
  std::memcpy(u, q, 12);
  constexpr std::uint32_t kLow6 = 0x3f3f3f3f, kLow4 = 0x0f0f0f0f, kLow2 = 0x03030303;
  u[3] = ((u[2] >> 4) & kLow4) | (((u[1] >> 6) & kLow2) << 4);  // m_4..m_7
  const std::uint32_t m03 = u[1] & kLow6;
  u[1] = (u[2] & kLow4) | (((u[0] >> 6) & kLow2) << 4);  // sc_4..sc_7
  u[2] = m03;
  u[0] &= kLow6;  // sc_0..sc_3
  const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(u));
  const __m256 sc = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
  const __m256 m = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(bytes, 8)));
  _mm256_storeu_ps(scale, _mm256_mul_ps(_mm256_set1_ps(d), sc));
  _mm256_storeu_ps(offset, _mm256_mul_ps(_mm256_set1_ps(dmin), m));
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// 8 int32 sums of 4 adjacent u8×s8 products.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

inline __m256i load32(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}

// 0xFF in byte i where bit i of the 32-bit word at p is set (ggml's bytes_from_bits_32).
inline __m256i bytes_from_bits_32(const std::uint8_t* p) {
  std::uint32_t x = 0;
  std::memcpy(&x, p, sizeof x);
  const __m256i shuf =
      _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202, 0x0101010101010101, 0);
  __m256i bytes = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(x)), shuf);
  bytes = _mm256_or_si256(bytes, _mm256_set1_epi64x(0x7fbfdfeff7fbfdfe));
  return _mm256_cmpeq_epi8(bytes, _mm256_set1_epi64x(-1));
}

// Accumulators of one row against up to kMaxCols columns: a vector of scaled int sums and a scalar
// for the offset terms.
struct Acc {
  __m256 v[kMaxCols];
  float s[kMaxCols];
  Acc() {
    for (int c = 0; c < kMaxCols; ++c) {
      v[c] = _mm256_setzero_ps();
      s[c] = 0;
    }
  }
};

// One 32-element block: w (unsigned, <= 63) against activation block b of every column;
// acc += scale * d_a * Σ w q_a - offset * s_a.
template <int NC>
inline void add_block(Acc& acc, __m256i w, float scale, float offset, const ActBlock* acts,
                      int nblocks, int b) {
  for (int c = 0; c < NC; ++c) {
    const ActBlock& a = acts[static_cast<std::size_t>(c) * static_cast<std::size_t>(nblocks) +
                             static_cast<std::size_t>(b)];
    const __m256i p = dot_u8s8(w, load32(a.qs));
    acc.v[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(scale * a.d), acc.v[c]);
    acc.s[c] += offset * a.s;
  }
}

template <int NC>
void row_q5_0(const BlockQ5_0* row, int nblocks, const ActBlock* acts, Acc& acc) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int b = 0; b < nblocks; ++b) {
    const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row[b].qs));
    const __m256i nib = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), low4);
    const __m256i hi = _mm256_and_si256(bytes_from_bits_32(row[b].qh), _mm256_set1_epi8(0x10));
    // Signed q - 16 (not q with an offset 16d·s_a, which would cancel most of the sum in f32):
    // |w| times a with w's sign, as the Q8_0 kernel does.
    const __m256i w = _mm256_sub_epi8(_mm256_or_si256(nib, hi), _mm256_set1_epi8(16));
    const __m256i wabs = _mm256_sign_epi8(w, w);
    const float d = _cvtsh_ss(row[b].d);
    for (int c = 0; c < NC; ++c) {
      const ActBlock& a = acts[static_cast<std::size_t>(c) * static_cast<std::size_t>(nblocks) +
                               static_cast<std::size_t>(b)];
      const __m256i p = dot_u8s8(wabs, _mm256_sign_epi8(load32(a.qs), w));
      acc.v[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * a.d), acc.v[c]);
    }
  }
}

// Batch 1: two Q5_0 rows against the one column, each row's sums in row_q5_0<1>'s order (so the
// same results); the two FMA chains and the shared activation loads are what a decode step needs.
inline __m256i q5_0_weights(const BlockQ5_0& blk) {
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk.qs));
  const __m256i nib =
      _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(t, 4), t), _mm256_set1_epi8(0x0F));
  const __m256i hi = _mm256_and_si256(bytes_from_bits_32(blk.qh), _mm256_set1_epi8(0x10));
  return _mm256_sub_epi8(_mm256_or_si256(nib, hi), _mm256_set1_epi8(16));
}

void rows2_q5_0(const BlockQ5_0* r0, const BlockQ5_0* r1, int nblocks, const ActBlock* acts,
                float* out) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int b = 0; b < nblocks; ++b) {
    const ActBlock& a = acts[b];
    const __m256i qa = load32(a.qs);
    const __m256i w0 = q5_0_weights(r0[b]);
    const __m256i w1 = q5_0_weights(r1[b]);
    const __m256i p0 = dot_u8s8(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(qa, w0));
    const __m256i p1 = dot_u8s8(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(qa, w1));
    acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(_cvtsh_ss(r0[b].d) * a.d), acc0);
    acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(_cvtsh_ss(r1[b].d) * a.d), acc1);
  }
  out[0] = hsum(acc0);  // row_q5_0 has no offset term (the caller's acc.s stays 0)
  out[1] = hsum(acc1);
}

template <int NC, bool kFiveBits, class Block>
void row_k4(const Block* row, int nsuper, const ActBlock* acts, Acc& acc) {
  const int nblocks = nsuper * 8;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int s = 0; s < nsuper; ++s) {
    const Block& blk = row[s];
    const float d = _cvtsh_ss(blk.d), dmin = _cvtsh_ss(blk.dmin);
    __m256i qh = _mm256_setzero_si256();
    if constexpr (kFiveBits) qh = load32(blk.qh);
    float scale[8], offset[8];
    k4_scales(blk.scales, d, dmin, scale, offset);
    for (int pair = 0; pair < 4; ++pair) {
      const __m256i q = load32(blk.qs + 32 * pair);
      for (int half = 0; half < 2; ++half) {
        const int j = 2 * pair + half;
        __m256i w = _mm256_and_si256(half ? _mm256_srli_epi16(q, 4) : q, low4);
        if constexpr (kFiveBits) {
          // Bit j of each qh byte to bit 4: shift j, mask bit 0, then left 4 (16-bit shifts never
          // carry a set bit across bytes here because the mask is applied first).
          const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(qh, j), _mm256_set1_epi8(1));
          w = _mm256_or_si256(w, _mm256_slli_epi16(bit, 4));
        }
        add_block<NC>(acc, w, scale[j], offset[j], acts, nblocks, s * 8 + j);
      }
    }
  }
}

// Batch 1: two Q4_K / Q5_K rows in lockstep, each through add_block<1> exactly as row_k4<1> runs
// it (so the same sums), interleaved so the two rows' FMA chains overlap.
template <bool kFiveBits, class Block>
void rows2_k4(const Block* row0, const Block* row1, int nsuper, const ActBlock* acts, Acc& acc0,
              Acc& acc1) {
  const int nblocks = nsuper * 8;
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int s = 0; s < nsuper; ++s) {
    const Block* blk[2] = {&row0[s], &row1[s]};
    Acc* acc[2] = {&acc0, &acc1};
    float scale[2][8], offset[2][8];
    __m256i qh[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int i = 0; i < 2; ++i) {
      k4_scales(blk[i]->scales, _cvtsh_ss(blk[i]->d), _cvtsh_ss(blk[i]->dmin), scale[i], offset[i]);
      if constexpr (kFiveBits) qh[i] = load32(blk[i]->qh);
    }
    for (int pair = 0; pair < 4; ++pair) {
      const __m256i q[2] = {load32(blk[0]->qs + 32 * pair), load32(blk[1]->qs + 32 * pair)};
      for (int half = 0; half < 2; ++half) {
        const int j = 2 * pair + half;
        for (int i = 0; i < 2; ++i) {
          __m256i w = _mm256_and_si256(half ? _mm256_srli_epi16(q[i], 4) : q[i], low4);
          if constexpr (kFiveBits) {
            const __m256i bit = _mm256_and_si256(_mm256_srli_epi16(qh[i], j), _mm256_set1_epi8(1));
            w = _mm256_or_si256(w, _mm256_slli_epi16(bit, 4));
          }
          add_block<1>(*acc[i], w, scale[i][j], offset[i][j], acts, nblocks, s * 8 + j);
        }
      }
    }
  }
}

// Q6_K's 6-bit values of block k of half h (k = 0..3), as signed -32..31.
inline __m256i q6_k_weights(const __m256i ql0, const __m256i ql1, const __m256i qh, int k) {
  const __m256i lowsrc = (k & 1) ? ql1 : ql0;
  const __m256i low =
      _mm256_and_si256(k >= 2 ? _mm256_srli_epi16(lowsrc, 4) : lowsrc, _mm256_set1_epi8(0x0F));
  const __m256i high = _mm256_and_si256(_mm256_srli_epi16(qh, 2 * k), _mm256_set1_epi8(3));
  const __m256i q = _mm256_or_si256(low, _mm256_slli_epi16(high, 4));  // 0..63
  return _mm256_sub_epi8(q, _mm256_set1_epi8(32));
}

// The 16-bit multipliers of block k: elements 0..15 and 16..31 of a block have their own scale,
// which is int16 words 0-7 and 8-15 of vpmaddubsw's output. `sc8` holds the half's 8 scales as
// int16 in both 128-bit lanes.
inline __m256i q6_k_scales(__m256i sc8, int k) {
  // Bytes 4k, 4k+1 (word 2k) repeated in the low lane, 4k+2, 4k+3 (word 2k+1) in the high lane.
  const __m256i pattern = _mm256_setr_epi8(0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1,  //
                                           2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3);
  const __m256i idx = _mm256_add_epi8(pattern, _mm256_set1_epi8(static_cast<char>(4 * k)));
  return _mm256_shuffle_epi8(sc8, idx);
}

inline __m256i q6_k_half_scales(const std::int8_t* sc) {
  std::int64_t eight = 0;
  std::memcpy(&eight, sc, sizeof eight);
  return _mm256_broadcastsi128_si256(_mm_cvtepi8_epi16(_mm_cvtsi64_si128(eight)));
}

// Σ sc_16 · w · q_a per 4-element group, exactly: vpmaddwd by the scale words instead of by ones
// multiplies each pair sum by its 16-element scale (|sums| <= 2·32·127, so no overflow), the same
// integers as multiplying the plain dot product afterwards, for one instruction instead of a
// two-uop vpmulld.
inline __m256i q6_k_dot(__m256i w, __m256i qa, __m256i scales) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(qa, w)),
                           scales);
}

template <int NC>
void row_q6_k(const BlockQ6_K* row, int nsuper, const ActBlock* acts, Acc& acc) {
  const int nblocks = nsuper * 8;
  for (int s = 0; s < nsuper; ++s) {
    const BlockQ6_K& blk = row[s];
    const float d = _cvtsh_ss(blk.d);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql0 = load32(blk.ql + 64 * h), ql1 = load32(blk.ql + 64 * h + 32);
      const __m256i qh = load32(blk.qh + 32 * h);
      const __m256i sc8 = q6_k_half_scales(blk.scales + 8 * h);
      for (int k = 0; k < 4; ++k) {
        const __m256i w = q6_k_weights(ql0, ql1, qh, k);
        const __m256i scales = q6_k_scales(sc8, k);
        const int b = s * 8 + h * 4 + k;
        for (int c = 0; c < NC; ++c) {
          const ActBlock& a = acts[static_cast<std::size_t>(c) * static_cast<std::size_t>(nblocks) +
                                   static_cast<std::size_t>(b)];
          const __m256i p = q6_k_dot(w, load32(a.qs), scales);
          acc.v[c] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(d * a.d), acc.v[c]);
        }
      }
    }
  }
}

// Batch 1: two Q6_K rows in lockstep, each summed as row_q6_k<1> sums it (the same results), so
// the two FMA chains overlap and each activation block is loaded once.
void rows2_q6_k(const BlockQ6_K* row0, const BlockQ6_K* row1, int nsuper, const ActBlock* acts,
                float* out) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  for (int s = 0; s < nsuper; ++s) {
    const BlockQ6_K& b0 = row0[s];
    const BlockQ6_K& b1 = row1[s];
    const float d0 = _cvtsh_ss(b0.d), d1 = _cvtsh_ss(b1.d);
    for (int h = 0; h < 2; ++h) {
      const __m256i ql00 = load32(b0.ql + 64 * h), ql01 = load32(b0.ql + 64 * h + 32),
                    qh0 = load32(b0.qh + 32 * h);
      const __m256i ql10 = load32(b1.ql + 64 * h), ql11 = load32(b1.ql + 64 * h + 32),
                    qh1 = load32(b1.qh + 32 * h);
      const __m256i sc0 = q6_k_half_scales(b0.scales + 8 * h),
                    sc1 = q6_k_half_scales(b1.scales + 8 * h);
      for (int k = 0; k < 4; ++k) {
        const ActBlock& a = acts[s * 8 + h * 4 + k];
        const __m256i qa = load32(a.qs);
        const __m256i p0 = q6_k_dot(q6_k_weights(ql00, ql01, qh0, k), qa, q6_k_scales(sc0, k));
        const __m256i p1 = q6_k_dot(q6_k_weights(ql10, ql11, qh1, k), qa, q6_k_scales(sc1, k));
        acc0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p0), _mm256_set1_ps(d0 * a.d), acc0);
        acc1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(p1), _mm256_set1_ps(d1 * a.d), acc1);
      }
    }
  }
  out[0] = hsum(acc0);  // Q6_K has no offset term
  out[1] = hsum(acc1);
}

// One row of `type` against NC columns.
template <int NC>
void row_dot(kernels::GgmlType type, const std::byte* p, int nblocks, const ActBlock* a, Acc& acc) {
  switch (type) {
    case kernels::GgmlType::q5_0:
      row_q5_0<NC>(reinterpret_cast<const BlockQ5_0*>(p), nblocks, a, acc);
      return;
    case kernels::GgmlType::q4_k:
      row_k4<NC, false>(reinterpret_cast<const BlockQ4_K*>(p), nblocks / 8, a, acc);
      return;
    case kernels::GgmlType::q5_k:
      row_k4<NC, true>(reinterpret_cast<const BlockQ5_K*>(p), nblocks / 8, a, acc);
      return;
    case kernels::GgmlType::q6_k:
      row_q6_k<NC>(reinterpret_cast<const BlockQ6_K*>(p), nblocks / 8, a, acc);
      return;
    default:
      return;
  }
}

}  // namespace

void matmul_kquant_avx2(kernels::GgmlType type, const std::byte* w, std::size_t row_bytes,
                        int nblocks, int r0, int r1, const ActBlock* acts, int ncols, float* out,
                        std::size_t out_stride) {
  if (ncols == 1 && type == kernels::GgmlType::q5_0) {
    for (; r0 + 2 <= r1; r0 += 2) {
      const std::byte* row = w + static_cast<std::size_t>(r0) * row_bytes;
      prefetch_ahead(row, 2 * row_bytes);
      rows2_q5_0(reinterpret_cast<const BlockQ5_0*>(row),
                 reinterpret_cast<const BlockQ5_0*>(row + row_bytes), nblocks, acts, out + r0);
    }
  }
  if (ncols == 1 && (type == kernels::GgmlType::q4_k || type == kernels::GgmlType::q5_k)) {
    for (; r0 + 2 <= r1; r0 += 2) {
      const std::byte* row = w + static_cast<std::size_t>(r0) * row_bytes;
      prefetch_ahead(row, 2 * row_bytes);
      Acc acc0, acc1;
      if (type == kernels::GgmlType::q4_k) {
        rows2_k4<false>(reinterpret_cast<const BlockQ4_K*>(row),
                        reinterpret_cast<const BlockQ4_K*>(row + row_bytes), nblocks / 8, acts,
                        acc0, acc1);
      } else {
        rows2_k4<true>(reinterpret_cast<const BlockQ5_K*>(row),
                       reinterpret_cast<const BlockQ5_K*>(row + row_bytes), nblocks / 8, acts, acc0,
                       acc1);
      }
      out[r0] = hsum(acc0.v[0]) - acc0.s[0];
      out[r0 + 1] = hsum(acc1.v[0]) - acc1.s[0];
    }
  }
  if (ncols == 1 && type == kernels::GgmlType::q6_k) {
    for (; r0 + 2 <= r1; r0 += 2) {
      const std::byte* row = w + static_cast<std::size_t>(r0) * row_bytes;
      prefetch_ahead(row, 2 * row_bytes);
      rows2_q6_k(reinterpret_cast<const BlockQ6_K*>(row),
                 reinterpret_cast<const BlockQ6_K*>(row + row_bytes), nblocks / 8, acts, out + r0);
    }
  }
  for (int r = r0; r < r1; ++r) {
    const std::byte* row = w + static_cast<std::size_t>(r) * row_bytes;
    if (ncols == 1) {
      prefetch_ahead(row, row_bytes);  // Q6_K and the odd last row: batch 1 streams the weights
    } else if (r + 1 < r1) {
      _mm_prefetch(reinterpret_cast<const char*>(row + row_bytes), _MM_HINT_T0);
    }
    for (int c0 = 0; c0 < ncols; c0 += kMaxCols) {
      const int nc = ncols - c0 < kMaxCols ? ncols - c0 : kMaxCols;
      const ActBlock* a = acts + static_cast<std::size_t>(c0) * static_cast<std::size_t>(nblocks);
      Acc acc;
      switch (nc) {
        case 1:
          row_dot<1>(type, row, nblocks, a, acc);
          break;
        case 2:
          row_dot<2>(type, row, nblocks, a, acc);
          break;
        case 3:
          row_dot<3>(type, row, nblocks, a, acc);
          break;
        default:
          row_dot<4>(type, row, nblocks, a, acc);
          break;
      }
      for (int c = 0; c < nc; ++c) {
        out[static_cast<std::size_t>(c0 + c) * out_stride + static_cast<std::size_t>(r)] =
            hsum(acc.v[c]) - acc.s[c];
      }
    }
  }
}

bool kquant_avx2_compiled() {
  return true;
}

}  // namespace podworker::llm::cpu
#else
namespace podworker::llm::cpu {
void matmul_kquant_avx2(kernels::GgmlType, const std::byte*, std::size_t, int, int, int,
                        const ActBlock*, int, float*, std::size_t) {}
bool kquant_avx2_compiled() {
  return false;
}
}  // namespace podworker::llm::cpu
#endif

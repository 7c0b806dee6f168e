// K-quant and Q5_0 matrix products (see matmul_kquant.h for the arithmetic): the portable version,
// which the AVX2 one (matmul_kquant_avx2.cpp) is tested against, and the dispatch between them.
#include "llm/cpu/matmul_kquant.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/half.h"
#include "kernels/kquant.h"

namespace podworker::llm::cpu {

namespace {

using kernels::fp16_to_fp32;
using kernels::GgmlType;

// One unpacked weight row: 32 int16 values per block, and the block's scale and offset.
struct UnpackedRow {
  std::vector<std::int16_t> w;
  std::vector<float> scale;
  std::vector<float> offset;
  void resize(int nblocks) {
    w.resize(static_cast<std::size_t>(nblocks) * 32);
    scale.resize(static_cast<std::size_t>(nblocks));
    offset.resize(static_cast<std::size_t>(nblocks));
  }
};

// Q4_K and Q5_K share their layout: 8 sub-blocks of 32 with 6-bit scales and mins, 4-bit quants
// (low nibbles for even sub-blocks, high for odd); Q5_K adds a fifth bit per value from qh.
template <class Block>
void unpack_k4_family(const Block* b, int nsuper, UnpackedRow& u) {
  for (int s = 0; s < nsuper; ++s) {
    const float d = fp16_to_fp32(b[s].d), dmin = fp16_to_fp32(b[s].dmin);
    std::int16_t* w = u.w.data() + static_cast<std::size_t>(s) * 256;
    for (int j = 0; j < 8; ++j) {
      std::uint8_t sc = 0, m = 0;
      kernels::cpu::kquant::scale_min_k4(j, b[s].scales, sc, m);
      u.scale[static_cast<std::size_t>(s * 8 + j)] = d * sc;
      u.offset[static_cast<std::size_t>(s * 8 + j)] = dmin * m;
      const std::uint8_t* q = b[s].qs + (j / 2) * 32;
      const int shift = (j % 2) * 4;
      for (int l = 0; l < 32; ++l) {
        int v = (q[l] >> shift) & 0xF;
        if constexpr (std::is_same_v<Block, kernels::BlockQ5_K>) v |= ((b[s].qh[l] >> j) & 1) << 4;
        w[j * 32 + l] = static_cast<std::int16_t>(v);
      }
    }
  }
}

void unpack_q6_k(const kernels::BlockQ6_K* b, int nsuper, UnpackedRow& u) {
  for (int s = 0; s < nsuper; ++s) {
    const float d = fp16_to_fp32(b[s].d);
    std::int16_t* w = u.w.data() + static_cast<std::size_t>(s) * 256;
    for (int j = 0; j < 8; ++j) {
      u.scale[static_cast<std::size_t>(s * 8 + j)] = d;
      u.offset[static_cast<std::size_t>(s * 8 + j)] = 0;
    }
    for (int half = 0; half < 2; ++half) {
      const std::uint8_t* ql = b[s].ql + half * 64;
      const std::uint8_t* qh = b[s].qh + half * 32;
      const std::int8_t* sc = b[s].scales + half * 8;
      std::int16_t* y = w + half * 128;
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        y[l + 0] = static_cast<std::int16_t>(sc[is + 0] * q1);
        y[l + 32] = static_cast<std::int16_t>(sc[is + 2] * q2);
        y[l + 64] = static_cast<std::int16_t>(sc[is + 4] * q3);
        y[l + 96] = static_cast<std::int16_t>(sc[is + 6] * q4);
      }
    }
  }
}

void unpack_q5_0(const kernels::BlockQ5_0* b, int nblocks, UnpackedRow& u) {
  for (int i = 0; i < nblocks; ++i) {
    const float d = fp16_to_fp32(b[i].d);
    u.scale[static_cast<std::size_t>(i)] = d;
    u.offset[static_cast<std::size_t>(i)] = 0;
    std::uint32_t qh = 0;
    std::memcpy(&qh, b[i].qh, sizeof qh);
    std::int16_t* w = u.w.data() + static_cast<std::size_t>(i) * 32;
    for (int j = 0; j < 16; ++j) {
      w[j] = static_cast<std::int16_t>(((b[i].qs[j] & 0xF) | (((qh >> j) & 1) << 4)) - 16);
      w[j + 16] =
          static_cast<std::int16_t>(((b[i].qs[j] >> 4) | (((qh >> (j + 16)) & 1) << 4)) - 16);
    }
  }
}

float dot_row(const UnpackedRow& u, int nblocks, const ActBlock* a) {
  float sum = 0;
  for (int b = 0; b < nblocks; ++b) {
    const std::int16_t* w = u.w.data() + static_cast<std::size_t>(b) * 32;
    std::int32_t dot = 0;
    for (int l = 0; l < 32; ++l) dot += static_cast<std::int32_t>(w[l]) * a[b].qs[l];
    sum += u.scale[static_cast<std::size_t>(b)] * a[b].d * static_cast<float>(dot) -
           u.offset[static_cast<std::size_t>(b)] * a[b].s;
  }
  return sum;
}

}  // namespace

bool is_kquant_matmul_type(GgmlType type) {
  return type == GgmlType::q4_k || type == GgmlType::q5_k || type == GgmlType::q6_k ||
         type == GgmlType::q5_0;
}

void matmul_kquant(GgmlType type, const std::byte* w, std::size_t row_bytes, int nblocks, int r0,
                   int r1, const ActBlock* acts, int ncols, float* out, std::size_t out_stride) {
  using Fn = decltype(&matmul_kquant_scalar);
  static const Fn fn = []() -> Fn {
    const CpuIsa isa = allowed_isa();
    if (isa == CpuIsa::avx512 && kquant_avx512_compiled()) return &matmul_kquant_avx512;
    if (isa >= CpuIsa::avx2 && kquant_avx2_compiled()) return &matmul_kquant_avx2;
    return &matmul_kquant_scalar;
  }();
  fn(type, w, row_bytes, nblocks, r0, r1, acts, ncols, out, out_stride);
}

void matmul_kquant_scalar(GgmlType type, const std::byte* w, std::size_t row_bytes, int nblocks,
                          int r0, int r1, const ActBlock* acts, int ncols, float* out,
                          std::size_t out_stride) {
  thread_local UnpackedRow u;
  u.resize(nblocks);
  for (int r = r0; r < r1; ++r) {
    const std::byte* row = w + static_cast<std::size_t>(r) * row_bytes;
    switch (type) {
      case GgmlType::q4_k:
        unpack_k4_family(reinterpret_cast<const kernels::BlockQ4_K*>(row), nblocks / 8, u);
        break;
      case GgmlType::q5_k:
        unpack_k4_family(reinterpret_cast<const kernels::BlockQ5_K*>(row), nblocks / 8, u);
        break;
      case GgmlType::q6_k:
        unpack_q6_k(reinterpret_cast<const kernels::BlockQ6_K*>(row), nblocks / 8, u);
        break;
      case GgmlType::q5_0:
        unpack_q5_0(reinterpret_cast<const kernels::BlockQ5_0*>(row), nblocks, u);
        break;
      default:
        return;
    }
    for (int c = 0; c < ncols; ++c) {
      out[static_cast<std::size_t>(c) * out_stride + static_cast<std::size_t>(r)] = dot_row(
          u, nblocks, acts + static_cast<std::size_t>(c) * static_cast<std::size_t>(nblocks));
    }
  }
}

}  // namespace podworker::llm::cpu

// Reference K-quant (and Q5_0) dequantization and quantization, transcribed from ggml's
// ggml-quants.c (dequantize_row_*, quantize_row_*_ref) so files we write are the files llama.cpp
// writes and our dequantized values are ggml's to the bit. Built with -ffp-contract=off: a fused
// multiply-add would round once where ggml rounds twice.
#include "kernels/kquant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/half.h"

namespace podworker::kernels::cpu::kquant {

namespace {

constexpr float kGroupMaxEps = 1e-15f;

// ggml's nearest_int: round half to even through the float mantissa (valid for |x| < 2^22).
int nearest_int(float x) {
  const float v = x + 12582912.0f;
  std::int32_t i = 0;
  std::memcpy(&i, &v, sizeof i);
  return (i & 0x007fffff) - 0x00400000;
}

// The value of largest magnitude among n (the first on ties, 0 when all are 0): its sign picks the
// side of the grid that gets the extra level in the symmetric quants.
float max_magnitude(const float* x, int n) {
  float amax = 0.0f;
  float max = 0.0f;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      max = x[i];
    }
  }
  return max;
}

// ggml's make_qkx2_quants: an asymmetric scale and min for n values with weights, searching
// nstep+1 candidate scales around nmax / (max - min) and keeping the weighted least-squares best.
// Returns the scale; *the_min is minus the offset (so x ≈ scale * L - the_min).
float make_qkx2_quants(int n, int nmax, const float* x, const float* weights, std::uint8_t* L,
                       float* the_min, std::uint8_t* Laux, float rmin, float rdelta, int nstep) {
  float min = x[0];
  float max = x[0];
  float sum_w = weights[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    const float w = weights[i];
    sum_w += w;
    sum_x += w * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *the_min = -min;
    return 0.0f;
  }
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  float best_mad = 0;
  for (int i = 0; i < n; ++i) {
    const int l = nearest_int(iscale * (x[i] - min));
    L[i] = static_cast<std::uint8_t>(std::max(0, std::min(nmax, l)));
    const float diff = scale * L[i] + min - x[i];
    best_mad += weights[i] * (diff * diff);
  }
  for (int is = 0; is <= nstep; ++is) {
    iscale = (rmin + rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * (x[i] - min));
      l = std::max(0, std::min(nmax, l));
      Laux[i] = static_cast<std::uint8_t>(l);
      const float w = weights[i];
      sum_l += w * static_cast<float>(l);
      sum_l2 += w * static_cast<float>(l) * static_cast<float>(l);
      sum_xl += w * static_cast<float>(l) * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      float mad = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * Laux[i] + this_min - x[i];
        mad += weights[i] * (diff * diff);
      }
      if (mad < best_mad) {
        for (int i = 0; i < n; ++i) L[i] = Laux[i];
        best_mad = mad;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

// ggml's make_qx_quants with rmse_type 1 (weights x²): a symmetric scale for values in
// [-nmax, nmax-1], refined over 18 nearby candidates. L receives the values offset by nmax.
float make_qx_quants(int n, int nmax, const float* x, std::int8_t* L) {
  const float max = max_magnitude(x, n);
  if (std::fabs(max) < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  float iscale = -static_cast<float>(nmax) / max;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    int l = nearest_int(iscale * x[i]);
    l = std::max(-nmax, std::min(nmax - 1, l));
    L[i] = static_cast<std::int8_t>(l + nmax);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      int l = nearest_int(iscale * x[i]);
      l = std::max(-nmax, std::min(nmax - 1, l));
      const float w = x[i] * x[i];
      sumlx += w * x[i] * static_cast<float>(l);
      suml2 += w * static_cast<float>(l) * static_cast<float>(l);
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        const int l = nearest_int(iscale * x[i]);
        L[i] = static_cast<std::int8_t>(nmax + std::max(-nmax, std::min(nmax - 1, l)));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// The part Q4_K and Q5_K share: per-32 scales and mins, packed to 6 bits against the block's d and
// dmin, then every element requantized against its packed scale. L receives values in [0, nmax].
template <class Block>
void quantize_scales_mins(const float* x, Block& y, std::uint8_t* L, int nmax, float rmin,
                          int nstep) {
  std::uint8_t Laux[32];
  float weights[32];
  float mins[kQKK / 32];
  float scales[kQKK / 32];
  float max_scale = 0;  // the min is subtracted, so scales are never negative
  float max_min = 0;
  for (int j = 0; j < kQKK / 32; ++j) {
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += x[32 * j + l] * x[32 * j + l];
    const float av_x = std::sqrt(sum_x2 / 32);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(x[32 * j + l]);
    scales[j] = make_qkx2_quants(32, nmax, x + 32 * j, weights, L + 32 * j, &mins[j], Laux, rmin,
                                 0.1f, nstep);
    max_scale = std::max(max_scale, scales[j]);
    max_min = std::max(max_min, mins[j]);
  }
  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  std::memset(y.scales, 0, sizeof y.scales);
  for (int j = 0; j < kQKK / 32; ++j) {
    const auto ls = static_cast<std::uint8_t>(std::min(63, nearest_int(inv_scale * scales[j])));
    const auto lm = static_cast<std::uint8_t>(std::min(63, nearest_int(inv_min * mins[j])));
    if (j < 4) {
      y.scales[j] = ls;
      y.scales[j + 4] = lm;
    } else {
      y.scales[j + 4] = static_cast<std::uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      y.scales[j - 4] |= static_cast<std::uint8_t>((ls >> 4) << 6);
      y.scales[j - 0] |= static_cast<std::uint8_t>((lm >> 4) << 6);
    }
  }
  y.d = fp32_to_fp16(max_scale / 63.f);
  y.dmin = fp32_to_fp16(max_min / 63.f);
  for (int j = 0; j < kQKK / 32; ++j) {
    std::uint8_t sc = 0, m = 0;
    scale_min_k4(j, y.scales, sc, m);
    const float d = fp16_to_fp32(y.d) * sc;
    if (d == 0) continue;
    const float dm = fp16_to_fp32(y.dmin) * m;
    for (int ii = 0; ii < 32; ++ii) {
      const int l = nearest_int((x[32 * j + ii] + dm) / d);
      L[32 * j + ii] = static_cast<std::uint8_t>(std::max(0, std::min(nmax, l)));
    }
  }
}

}  // namespace

void dequantize_q5_0(const BlockQ5_0* src, float* y, std::int64_t nb) {
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(src[i].d);
    std::uint32_t qh = 0;
    std::memcpy(&qh, src[i].qh, sizeof qh);
    for (int j = 0; j < kQK4 / 2; ++j) {
      const int xh0 = static_cast<int>(((qh >> j) << 4) & 0x10);
      const int xh1 = static_cast<int>((qh >> (j + 12)) & 0x10);
      const int x0 = ((src[i].qs[j] & 0x0F) | xh0) - 16;
      const int x1 = ((src[i].qs[j] >> 4) | xh1) - 16;
      y[i * kQK4 + j] = static_cast<float>(x0) * d;
      y[i * kQK4 + j + kQK4 / 2] = static_cast<float>(x1) * d;
    }
  }
}

void dequantize_q4_k(const BlockQ4_K* src, float* y, std::int64_t nb) {
  for (std::int64_t i = 0; i < nb; ++i) {
    const std::uint8_t* q = src[i].qs;
    const float d = fp16_to_fp32(src[i].d);
    const float min = fp16_to_fp32(src[i].dmin);
    for (int is = 0; is < 8; is += 2) {
      std::uint8_t sc = 0, m = 0;
      scale_min_k4(is, src[i].scales, sc, m);
      const float d1 = d * sc, m1 = min * m;
      scale_min_k4(is + 1, src[i].scales, sc, m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(q[l] & 0xF) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(q[l] >> 4) - m2;
      q += 32;
    }
  }
}

void dequantize_q5_k(const BlockQ5_K* src, float* y, std::int64_t nb) {
  for (std::int64_t i = 0; i < nb; ++i) {
    const std::uint8_t* ql = src[i].qs;
    const std::uint8_t* qh = src[i].qh;
    const float d = fp16_to_fp32(src[i].d);
    const float min = fp16_to_fp32(src[i].dmin);
    unsigned u1 = 1, u2 = 2;
    for (int is = 0; is < 8; is += 2) {
      std::uint8_t sc = 0, m = 0;
      scale_min_k4(is, src[i].scales, sc, m);
      const float d1 = d * sc, m1 = min * m;
      scale_min_k4(is + 1, src[i].scales, sc, m);
      const float d2 = d * sc, m2 = min * m;
      for (int l = 0; l < 32; ++l)
        *y++ = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
      for (int l = 0; l < 32; ++l)
        *y++ = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
      ql += 32;
      u1 <<= 2;
      u2 <<= 2;
    }
  }
}

void dequantize_q6_k(const BlockQ6_K* src, float* y, std::int64_t nb) {
  for (std::int64_t i = 0; i < nb; ++i) {
    const float d = fp16_to_fp32(src[i].d);
    const std::uint8_t* ql = src[i].ql;
    const std::uint8_t* qh = src[i].qh;
    const std::int8_t* sc = src[i].scales;
    // Two halves of 128; each ql byte holds two low nibbles, each qh byte four 2-bit highs.
    for (int half = 0; half < 2; ++half) {
      for (int l = 0; l < 32; ++l) {
        const int is = l / 16;
        const int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
        const int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
        const int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
        const int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
        // (d * scale) * q, rounded twice as ggml does.
        y[l + 0] = d * static_cast<float>(sc[is + 0]) * static_cast<float>(q1);
        y[l + 32] = d * static_cast<float>(sc[is + 2]) * static_cast<float>(q2);
        y[l + 64] = d * static_cast<float>(sc[is + 4]) * static_cast<float>(q3);
        y[l + 96] = d * static_cast<float>(sc[is + 6]) * static_cast<float>(q4);
      }
      y += 128;
      ql += 64;
      qh += 32;
      sc += 8;
    }
  }
}

void quantize_q5_0(const float* x, BlockQ5_0* y, std::int64_t nb) {
  for (std::int64_t i = 0; i < nb; ++i, x += kQK4) {
    const float max = max_magnitude(x, kQK4);
    const float d = max / -16;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    y[i].d = fp32_to_fp16(d);
    std::uint32_t qh = 0;
    for (int j = 0; j < kQK4 / 2; ++j) {
      const float x0 = x[j] * id;
      const float x1 = x[kQK4 / 2 + j] * id;
      const auto xi0 = static_cast<std::uint8_t>(
          std::min(31, static_cast<int>(static_cast<std::int8_t>(x0 + 16.5f))));
      const auto xi1 = static_cast<std::uint8_t>(
          std::min(31, static_cast<int>(static_cast<std::int8_t>(x1 + 16.5f))));
      y[i].qs[j] = static_cast<std::uint8_t>((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
      qh |= ((xi0 & 0x10u) >> 4) << j;
      qh |= ((xi1 & 0x10u) >> 4) << (j + kQK4 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof qh);
  }
}

void quantize_q5_0_search(const float* x, BlockQ5_0* y, std::int64_t nb) {
  for (std::int64_t i = 0; i < nb; ++i, x += kQK4) {
    const float max = max_magnitude(x, kQK4);
    // Each candidate: levels rounded at an inverse scale, their least-squares scale, that scale
    // rounded to the stored fp16, and the levels rounded again against it; scored by the squared
    // error of what will actually be stored.
    float d = 0.0f;
    if (std::fabs(max) >= kGroupMaxEps) {
      float best = std::numeric_limits<float>::infinity();
      auto try_scale = [&](float iscale) {
        float sum_xl = 0.0f, sum_l2 = 0.0f;
        for (int j = 0; j < kQK4; ++j) {
          const auto l =
              static_cast<float>(std::max(-16, std::min(15, nearest_int(iscale * x[j]))));
          sum_xl += x[j] * l;
          sum_l2 += l * l;
        }
        if (sum_l2 <= 0) return;
        const float dh = fp16_to_fp32(fp32_to_fp16(sum_xl / sum_l2));
        if (dh == 0.0f) return;
        const float id = 1.0f / dh;
        float err = 0.0f;
        for (int j = 0; j < kQK4; ++j) {
          const auto l = static_cast<float>(std::max(-16, std::min(15, nearest_int(x[j] * id))));
          const float diff = x[j] - dh * l;
          err += diff * diff;
        }
        if (err < best) {
          best = err;
          d = dh;
        }
      };
      // ggml's choice first (the largest magnitude at -16), so ties keep it; then that value at
      // +15 and each grid stretched by up to one level: a finer step that clips one outlier often
      // fits the other 31 values better.
      try_scale(-16.0f / max);
      for (int k = -10; k <= 10; ++k) {
        if (k != 0) try_scale(-(16.0f + 0.1f * static_cast<float>(k)) / max);
        try_scale((15.0f + 0.1f * static_cast<float>(k)) / max);
      }
      // A few rounds of alternating rounding and least-squares refits from the best so far.
      for (int round = 0; round < 3 && d != 0.0f; ++round) try_scale(1.0f / d);
    }
    y[i].d = fp32_to_fp16(d);
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    std::uint32_t qh = 0;
    for (int j = 0; j < kQK4 / 2; ++j) {
      const int l0 = std::max(-16, std::min(15, nearest_int(x[j] * id))) + 16;
      const int l1 = std::max(-16, std::min(15, nearest_int(x[kQK4 / 2 + j] * id))) + 16;
      y[i].qs[j] = static_cast<std::uint8_t>((l0 & 0x0F) | ((l1 & 0x0F) << 4));
      qh |= ((static_cast<unsigned>(l0) & 0x10u) >> 4) << j;
      qh |= ((static_cast<unsigned>(l1) & 0x10u) >> 4) << (j + kQK4 / 2);
    }
    std::memcpy(y[i].qh, &qh, sizeof qh);
  }
}

void quantize_q4_k(const float* x, BlockQ4_K* y, std::int64_t nb) {
  std::uint8_t L[kQKK];
  for (std::int64_t i = 0; i < nb; ++i, x += kQKK) {
    quantize_scales_mins(x, y[i], L, 15, -1.0f, 20);
    std::uint8_t* q = y[i].qs;
    for (int j = 0; j < kQKK; j += 64) {
      for (int l = 0; l < 32; ++l)
        q[l] = static_cast<std::uint8_t>(L[j + l] | (L[j + l + 32] << 4));
      q += 32;
    }
  }
}

void quantize_q5_k(const float* x, BlockQ5_K* y, std::int64_t nb) {
  std::uint8_t L[kQKK];
  for (std::int64_t i = 0; i < nb; ++i, x += kQKK) {
    quantize_scales_mins(x, y[i], L, 31, -0.5f, 15);
    std::uint8_t* qh = y[i].qh;
    std::uint8_t* ql = y[i].qs;
    std::memset(qh, 0, kQKK / 8);
    unsigned m1 = 1, m2 = 2;
    for (int n = 0; n < kQKK; n += 64) {
      for (int j = 0; j < 32; ++j) {
        int l1 = L[n + j];
        if (l1 > 15) {
          l1 -= 16;
          qh[j] = static_cast<std::uint8_t>(qh[j] | m1);
        }
        int l2 = L[n + j + 32];
        if (l2 > 15) {
          l2 -= 16;
          qh[j] = static_cast<std::uint8_t>(qh[j] | m2);
        }
        ql[j] = static_cast<std::uint8_t>(l1 | (l2 << 4));
      }
      m1 <<= 2;
      m2 <<= 2;
      ql += 32;
    }
  }
}

void quantize_q6_k(const float* x, BlockQ6_K* y, std::int64_t nb) {
  std::int8_t L[kQKK];
  float scales[kQKK / 16];
  for (std::int64_t i = 0; i < nb; ++i, x += kQKK) {
    float max_scale = 0;
    float max_abs_scale = 0;
    for (int ib = 0; ib < kQKK / 16; ++ib) {
      const float scale = make_qx_quants(16, 32, x + 16 * ib, L + 16 * ib);
      scales[ib] = scale;
      if (std::fabs(scale) > max_abs_scale) {
        max_abs_scale = std::fabs(scale);
        max_scale = scale;
      }
    }
    if (max_abs_scale < kGroupMaxEps) {
      std::memset(&y[i], 0, sizeof y[i]);
      y[i].d = fp32_to_fp16(0.f);
      continue;
    }
    const float iscale = -128.f / max_scale;
    y[i].d = fp32_to_fp16(1 / iscale);
    for (int ib = 0; ib < kQKK / 16; ++ib) {
      y[i].scales[ib] = static_cast<std::int8_t>(std::min(127, nearest_int(iscale * scales[ib])));
    }
    for (int j = 0; j < kQKK / 16; ++j) {
      const float d = fp16_to_fp32(y[i].d) * static_cast<float>(y[i].scales[j]);
      if (d == 0) continue;
      for (int ii = 0; ii < 16; ++ii) {
        const int l = nearest_int(x[16 * j + ii] / d);
        L[16 * j + ii] = static_cast<std::int8_t>(std::max(-32, std::min(31, l)) + 32);
      }
    }
    std::uint8_t* ql = y[i].ql;
    std::uint8_t* qh = y[i].qh;
    for (int j = 0; j < kQKK; j += 128) {
      for (int l = 0; l < 32; ++l) {
        const int q1 = L[j + l + 0] & 0xF;
        const int q2 = L[j + l + 32] & 0xF;
        const int q3 = L[j + l + 64] & 0xF;
        const int q4 = L[j + l + 96] & 0xF;
        ql[l + 0] = static_cast<std::uint8_t>(q1 | (q3 << 4));
        ql[l + 32] = static_cast<std::uint8_t>(q2 | (q4 << 4));
        qh[l] =
            static_cast<std::uint8_t>((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) |
                                      ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
      }
      ql += 64;
      qh += 32;
    }
  }
}

}  // namespace podworker::kernels::cpu::kquant

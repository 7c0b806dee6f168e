// CPU reference dequantization and quantization of ggml block formats: the source of truth the CUDA
// kernels are tested against. Plain loops over one block at a time, no tricks.
#include "kernels/dequantize.h"

#include "kernels/kquant.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace podworker::kernels {

namespace {

void check_count(GgmlType type, std::int64_t n) {
  if (n < 0 || n % block_elements(type) != 0) {
    throw std::invalid_argument("element count " + std::to_string(n) + " is not a multiple of the " +
                                std::string(type_name(type)) + " block size");
  }
}

}  // namespace

std::size_t tensor_bytes(GgmlType type, std::int64_t n) {
  check_count(type, n);
  return static_cast<std::size_t>(n / block_elements(type)) * block_bytes(type);
}

namespace cpu {

void dequantize(GgmlType type, const void* src, float* dst, std::int64_t n) {
  check_count(type, n);
  const std::int64_t nb = n / block_elements(type);
  switch (type) {
    case GgmlType::f32:
      std::copy_n(static_cast<const float*>(src), n, dst);
      return;
    case GgmlType::f16:
      for (std::int64_t i = 0; i < n; ++i) dst[i] = fp16_to_fp32(static_cast<const half_bits*>(src)[i]);
      return;
    case GgmlType::bf16:
      for (std::int64_t i = 0; i < n; ++i) dst[i] = bf16_to_fp32(static_cast<const bf16_bits*>(src)[i]);
      return;
    case GgmlType::q4_0:
      for (std::int64_t i = 0; i < nb; ++i) {
        const BlockQ4_0& b = static_cast<const BlockQ4_0*>(src)[i];
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < kQK4 / 2; ++j) {
          dst[i * kQK4 + j] = d * static_cast<float>((b.qs[j] & 0xF) - 8);
          dst[i * kQK4 + j + kQK4 / 2] = d * static_cast<float>((b.qs[j] >> 4) - 8);
        }
      }
      return;
    case GgmlType::q4_1:
      for (std::int64_t i = 0; i < nb; ++i) {
        const BlockQ4_1& b = static_cast<const BlockQ4_1*>(src)[i];
        const float d = fp16_to_fp32(b.d);
        const float m = fp16_to_fp32(b.m);
        for (int j = 0; j < kQK4 / 2; ++j) {
          dst[i * kQK4 + j] = d * static_cast<float>(b.qs[j] & 0xF) + m;
          dst[i * kQK4 + j + kQK4 / 2] = d * static_cast<float>(b.qs[j] >> 4) + m;
        }
      }
      return;
    case GgmlType::q8_0:
      for (std::int64_t i = 0; i < nb; ++i) {
        const BlockQ8_0& b = static_cast<const BlockQ8_0*>(src)[i];
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < kQK8; ++j) dst[i * kQK8 + j] = d * static_cast<float>(b.qs[j]);
      }
      return;
    case GgmlType::q8_1:
      for (std::int64_t i = 0; i < nb; ++i) {
        const BlockQ8_1& b = static_cast<const BlockQ8_1*>(src)[i];
        const float d = fp16_to_fp32(b.d);
        for (int j = 0; j < kQK8; ++j) dst[i * kQK8 + j] = d * static_cast<float>(b.qs[j]);
      }
      return;
    case GgmlType::q5_0: return kquant::dequantize_q5_0(static_cast<const BlockQ5_0*>(src), dst, nb);
    case GgmlType::q4_k: return kquant::dequantize_q4_k(static_cast<const BlockQ4_K*>(src), dst, nb);
    case GgmlType::q5_k: return kquant::dequantize_q5_k(static_cast<const BlockQ5_K*>(src), dst, nb);
    case GgmlType::q6_k: return kquant::dequantize_q6_k(static_cast<const BlockQ6_K*>(src), dst, nb);
  }
  throw std::invalid_argument("dequantize: unsupported type");
}

void quantize(GgmlType type, const float* src, void* dst, std::int64_t n) {
  check_count(type, n);
  const std::int64_t nb = n / block_elements(type);
  switch (type) {
    case GgmlType::f32:
      std::copy_n(src, n, static_cast<float*>(dst));
      return;
    case GgmlType::f16:
      for (std::int64_t i = 0; i < n; ++i) static_cast<half_bits*>(dst)[i] = fp32_to_fp16(src[i]);
      return;
    case GgmlType::bf16:
      for (std::int64_t i = 0; i < n; ++i) static_cast<bf16_bits*>(dst)[i] = fp32_to_bf16(src[i]);
      return;
    case GgmlType::q4_0:
      for (std::int64_t i = 0; i < nb; ++i) {
        const float* x = src + i * kQK4;
        // The signed value of largest magnitude maps to -8, so its sign decides the scale's sign.
        float max = 0.0f;
        for (int j = 0; j < kQK4; ++j) {
          if (std::fabs(x[j]) > std::fabs(max)) max = x[j];
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ4_0& b = static_cast<BlockQ4_0*>(dst)[i];
        b.d = fp32_to_fp16(d);
        for (int j = 0; j < kQK4 / 2; ++j) {
          const int q0 = std::min(15, static_cast<int>(x[j] * id + 8.5f));
          const int q1 = std::min(15, static_cast<int>(x[j + kQK4 / 2] * id + 8.5f));
          b.qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
        }
      }
      return;
    case GgmlType::q4_1:
      for (std::int64_t i = 0; i < nb; ++i) {
        const float* x = src + i * kQK4;
        const auto [lo, hi] = std::minmax_element(x, x + kQK4);
        const float d = (*hi - *lo) / 15.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        BlockQ4_1& b = static_cast<BlockQ4_1*>(dst)[i];
        b.d = fp32_to_fp16(d);
        b.m = fp32_to_fp16(*lo);
        for (int j = 0; j < kQK4 / 2; ++j) {
          const int q0 = std::min(15, static_cast<int>((x[j] - *lo) * id + 0.5f));
          const int q1 = std::min(15, static_cast<int>((x[j + kQK4 / 2] - *lo) * id + 0.5f));
          b.qs[j] = static_cast<std::uint8_t>(q0 | (q1 << 4));
        }
      }
      return;
    case GgmlType::q8_0:
    case GgmlType::q8_1:
      for (std::int64_t i = 0; i < nb; ++i) {
        const float* x = src + i * kQK8;
        float amax = 0.0f;
        for (int j = 0; j < kQK8; ++j) amax = std::max(amax, std::fabs(x[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        std::int8_t* qs = nullptr;
        if (type == GgmlType::q8_0) {
          BlockQ8_0& b = static_cast<BlockQ8_0*>(dst)[i];
          b.d = fp32_to_fp16(d);
          qs = b.qs;
        } else {
          BlockQ8_1& b = static_cast<BlockQ8_1*>(dst)[i];
          b.d = fp32_to_fp16(d);
          qs = b.qs;
        }
        int sum = 0;
        for (int j = 0; j < kQK8; ++j) {
          qs[j] = static_cast<std::int8_t>(std::lround(x[j] * id));
          sum += qs[j];
        }
        if (type == GgmlType::q8_1) static_cast<BlockQ8_1*>(dst)[i].s = fp32_to_fp16(d * static_cast<float>(sum));
      }
      return;
    case GgmlType::q5_0: return kquant::quantize_q5_0(src, static_cast<BlockQ5_0*>(dst), nb);
    case GgmlType::q4_k: return kquant::quantize_q4_k(src, static_cast<BlockQ4_K*>(dst), nb);
    case GgmlType::q5_k: return kquant::quantize_q5_k(src, static_cast<BlockQ5_K*>(dst), nb);
    case GgmlType::q6_k: return kquant::quantize_q6_k(src, static_cast<BlockQ6_K*>(dst), nb);
  }
  throw std::invalid_argument("quantize: unsupported type " + std::string(type_name(type)));
}

}  // namespace cpu
}  // namespace podworker::kernels

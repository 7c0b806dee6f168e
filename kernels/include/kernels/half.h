// IEEE binary16 and bfloat16 conversions on the host, bit-exact with the hardware conversions
// (round to nearest even; NaN stays NaN). Used by the CPU references and to prepare GPU inputs.
#pragma once

#include <bit>
#include <cstdint>

#include "kernels/ggml_types.h"

namespace podworker::kernels {

inline float fp16_to_fp32(half_bits h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1fu;
  const std::uint32_t mant = h & 0x3ffu;
  if (exp == 0) {
    // Zero or subnormal: value = mant * 2^-24, exact in float.
    const float v = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

inline half_bits fp32_to_fp16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const std::uint32_t sign = (x >> 16) & 0x8000u;
  const std::uint32_t abs = x & 0x7fffffffu;
  if (abs > 0x7f800000u) return static_cast<half_bits>(sign | 0x7e00u);  // NaN
  if (abs >= 0x477ff000u) return static_cast<half_bits>(sign | 0x7c00u);  // rounds to inf
  if (abs < 0x38800000u) {
    // Result is subnormal (or zero): round abs / 2^-24 to nearest even.
    const float scaled = std::bit_cast<float>(abs) * 0x1p24f;
    // Adding 2^23 makes the float unit 1, so the hardware rounds to nearest even for us.
    const std::uint32_t r = std::bit_cast<std::uint32_t>(scaled + 0x1p23f) - 0x4b000000u;
    return static_cast<half_bits>(sign | r);
  }
  const std::uint32_t rounded = abs + 0xfffu + ((abs >> 13) & 1u);
  return static_cast<half_bits>(sign | ((rounded - 0x38000000u) >> 13));
}

using bf16_bits = std::uint16_t;

inline float bf16_to_fp32(bf16_bits b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

inline bf16_bits fp32_to_bf16(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<bf16_bits>((x >> 16) | 0x40u);  // quiet NaN
  return static_cast<bf16_bits>((x + 0x7fffu + ((x >> 16) & 1u)) >> 16);
}

}  // namespace podworker::kernels

// GGML tensor types and quantization block layouts, as GGUF files store them (ggml's numbering and
// byte layouts). Shared by the GGUF loader, the CPU references and the CUDA kernels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace podworker::kernels {

// Values are ggml's `enum ggml_type` numbers, as written in GGUF tensor infos.
enum class GgmlType : std::uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q8_0 = 8,
  q8_1 = 9,
  q6_k = 14,
  bf16 = 30,
};

inline constexpr int kQK4 = 32;   // elements per Q4_0 / Q4_1 block
inline constexpr int kQK8 = 32;   // elements per Q8_0 / Q8_1 block
inline constexpr int kQKK = 256;  // elements per K-quant super-block (Q6_K)

// Half-precision floats are stored as raw IEEE binary16 bits.
using half_bits = std::uint16_t;

// Q4_0: x = d * (q - 8), q in [0,15]; low nibbles hold elements 0..15, high nibbles 16..31.
struct BlockQ4_0 {
  half_bits d;
  std::uint8_t qs[kQK4 / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// Q4_1: x = d * q + m; same nibble order as Q4_0.
struct BlockQ4_1 {
  half_bits d;
  half_bits m;
  std::uint8_t qs[kQK4 / 2];
};
static_assert(sizeof(BlockQ4_1) == 20);

// Q8_0: x = d * q.
struct BlockQ8_0 {
  half_bits d;
  std::int8_t qs[kQK8];
};
static_assert(sizeof(BlockQ8_0) == 34);

// Q8_1: x = d * q; s = d * sum(q), used as the activation side of Q4_1 dot products.
struct BlockQ8_1 {
  half_bits d;
  half_bits s;
  std::int8_t qs[kQK8];
};
static_assert(sizeof(BlockQ8_1) == 36);

// Q6_K: 256 elements, 16 sub-blocks of 16 with int8 scales; x = d * scale * (q - 32).
struct BlockQ6_K {
  std::uint8_t ql[kQKK / 2];
  std::uint8_t qh[kQKK / 4];
  std::int8_t scales[kQKK / 16];
  half_bits d;
};
static_assert(sizeof(BlockQ6_K) == 210);

// Elements per block and bytes per block of a type (1 element for unquantized types).
constexpr std::int64_t block_elements(GgmlType t) {
  switch (t) {
    case GgmlType::q4_0:
    case GgmlType::q4_1:
    case GgmlType::q8_0:
    case GgmlType::q8_1: return 32;
    case GgmlType::q6_k: return 256;
    default: return 1;
  }
}
constexpr std::size_t block_bytes(GgmlType t) {
  switch (t) {
    case GgmlType::f32: return 4;
    case GgmlType::f16:
    case GgmlType::bf16: return 2;
    case GgmlType::q4_0: return sizeof(BlockQ4_0);
    case GgmlType::q4_1: return sizeof(BlockQ4_1);
    case GgmlType::q8_0: return sizeof(BlockQ8_0);
    case GgmlType::q8_1: return sizeof(BlockQ8_1);
    case GgmlType::q6_k: return sizeof(BlockQ6_K);
  }
  return 0;
}
constexpr bool is_supported(std::uint32_t raw) {
  switch (static_cast<GgmlType>(raw)) {
    case GgmlType::f32:
    case GgmlType::f16:
    case GgmlType::q4_0:
    case GgmlType::q4_1:
    case GgmlType::q8_0:
    case GgmlType::q8_1:
    case GgmlType::q6_k:
    case GgmlType::bf16: return true;
  }
  return false;
}
constexpr std::string_view type_name(GgmlType t) {
  switch (t) {
    case GgmlType::f32: return "F32";
    case GgmlType::f16: return "F16";
    case GgmlType::q4_0: return "Q4_0";
    case GgmlType::q4_1: return "Q4_1";
    case GgmlType::q8_0: return "Q8_0";
    case GgmlType::q8_1: return "Q8_1";
    case GgmlType::q6_k: return "Q6_K";
    case GgmlType::bf16: return "BF16";
  }
  return "?";
}

}  // namespace podworker::kernels

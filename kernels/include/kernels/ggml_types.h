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
  q5_0 = 6,
  q8_0 = 8,
  q8_1 = 9,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  bf16 = 30,
};

inline constexpr int kQK4 = 32;   // elements per Q4_0 / Q4_1 block
inline constexpr int kQK8 = 32;   // elements per Q8_0 / Q8_1 block
inline constexpr int kQKK = 256;  // elements per K-quant super-block (Q4_K, Q5_K, Q6_K)
inline constexpr int kKScaleBytes = 12;  // packed 6-bit scales and mins of Q4_K / Q5_K

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

// Q5_0: x = d * (q - 16), q in [0,31]: the low nibbles as Q4_0, bit 4 of element j is bit j of qh.
struct BlockQ5_0 {
  half_bits d;
  std::uint8_t qh[4];
  std::uint8_t qs[kQK4 / 2];
};
static_assert(sizeof(BlockQ5_0) == 22);

// Q4_K: 256 elements, 8 sub-blocks of 32, each with a 6-bit scale and a 6-bit min packed into
// `scales`; x = d * scale_j * q - dmin * min_j, q in [0,15]. Each 32 bytes of qs hold two
// sub-blocks: low nibbles the first, high nibbles the second.
struct BlockQ4_K {
  half_bits d;
  half_bits dmin;
  std::uint8_t scales[kKScaleBytes];
  std::uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ4_K) == 144);

// Q5_K: Q4_K plus a fifth bit per element: bit 2p (2p+1) of qh[l] is the high bit of element l of
// sub-block 2p (2p+1); q in [0,31].
struct BlockQ5_K {
  half_bits d;
  half_bits dmin;
  std::uint8_t scales[kKScaleBytes];
  std::uint8_t qh[kQKK / 8];
  std::uint8_t qs[kQKK / 2];
};
static_assert(sizeof(BlockQ5_K) == 176);

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
    case GgmlType::q5_0:
    case GgmlType::q8_1: return 32;
    case GgmlType::q4_k:
    case GgmlType::q5_k:
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
    case GgmlType::q5_0: return sizeof(BlockQ5_0);
    case GgmlType::q4_k: return sizeof(BlockQ4_K);
    case GgmlType::q5_k: return sizeof(BlockQ5_K);
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
    case GgmlType::q5_0:
    case GgmlType::q8_0:
    case GgmlType::q8_1:
    case GgmlType::q4_k:
    case GgmlType::q5_k:
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
    case GgmlType::q5_0: return "Q5_0";
    case GgmlType::q8_1: return "Q8_1";
    case GgmlType::q4_k: return "Q4_K";
    case GgmlType::q5_k: return "Q5_K";
    case GgmlType::q6_k: return "Q6_K";
    case GgmlType::bf16: return "BF16";
  }
  return "?";
}

}  // namespace podworker::kernels

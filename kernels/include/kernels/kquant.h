// ggml's K-quant block formats (Q4_K, Q5_K, Q6_K) and Q5_0, the type llama.cpp's K-quant mixes fall
// back to for rows that are not a multiple of 256: reference dequantization and quantization, one
// block at a time. kernels/cpu/dequantize.cpp dispatches here; the layouts are in ggml_types.h.
#pragma once

#include <cstdint>

#include "kernels/ggml_types.h"

namespace podworker::kernels::cpu::kquant {

// `nb` blocks from `src` into nb * block_elements(type) floats; (d * scale) * q - (dmin * min) in
// exactly ggml's order of operations, so the result is bit for bit ggml's (and gguf-py's).
void dequantize_q5_0(const BlockQ5_0* src, float* dst, std::int64_t nb);
void dequantize_q4_k(const BlockQ4_K* src, float* dst, std::int64_t nb);
void dequantize_q5_k(const BlockQ5_K* src, float* dst, std::int64_t nb);
void dequantize_q6_k(const BlockQ6_K* src, float* dst, std::int64_t nb);

// ggml's reference quantizers (quantize_row_*_ref): Q5_0 from the largest magnitude; Q4_K / Q5_K
// fit a scale and a min per 32 with a weighted least-squares search; Q6_K a signed scale per 16.
void quantize_q5_0(const float* src, BlockQ5_0* dst, std::int64_t nb);
void quantize_q4_k(const float* src, BlockQ4_K* dst, std::int64_t nb);
void quantize_q5_k(const float* src, BlockQ5_K* dst, std::int64_t nb);
void quantize_q6_k(const float* src, BlockQ6_K* dst, std::int64_t nb);

// Q5_0 with the scale that minimizes the block's squared error (candidates around the largest
// magnitude mapped to -16 or +15, each refit by least squares), rather than ggml's reference scale
// max / -16. Same layout; the requantizer uses it because the reference scale wastes a level on
// data that is already on a coarser grid (a Q4_1 source) or that has one outlier.
void quantize_q5_0_search(const float* src, BlockQ5_0* dst, std::int64_t nb);

// Scale and min of sub-block j (0..7) from the 12 packed bytes of a Q4_K / Q5_K block.
inline void scale_min_k4(int j, const std::uint8_t* q, std::uint8_t& d, std::uint8_t& m) {
  if (j < 4) {
    d = q[j] & 63;
    m = q[j + 4] & 63;
  } else {
    d = static_cast<std::uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    m = static_cast<std::uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

}  // namespace podworker::kernels::cpu::kquant

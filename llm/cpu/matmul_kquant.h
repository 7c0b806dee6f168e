// Weight × activation products for the K-quant types (Q4_K, Q5_K, Q6_K) and Q5_0, the type
// llama.cpp's K-quant mixes use for rows a 256-element super-block does not divide.
//
// Each weight row is unpacked once into int16 values and one f32 scale and offset per 32 elements,
// then dotted with every activation column (ActBlock: 32 int8 values, d_a and s_a = d_a Σ q_a):
//   Σ_block  scale * d_a * Σ w16·q_a  -  offset * s_a
// Q4_K / Q5_K: w16 = q, scale = d·sc_j, offset = dmin·m_j.  Q5_0: w16 = q - 16, scale = d, offset =
// 0 (signed, rather than an offset 16d·s_a that would cancel most of the sum in f32). Q6_K: w16 =
// sc_16 · (q - 32) (two 16-element scales per 32), scale = d, offset = 0. Integer sums are exact,
// so the result equals the f32 dot of the dequantized row with the dequantized activations up to
// the order of the f32 additions.
#pragma once

#include <cstddef>

#include "kernels/ggml_types.h"
#include "llm/cpu/matmul.h"

namespace podworker::llm::cpu {

// True for the types matmul_kquant handles.
bool is_kquant_matmul_type(kernels::GgmlType type);

// As MatmulFn, for a weight of `type`; `nblocks` counts 32-element activation blocks per row. Runs
// the widest version the CPU has (AVX512-VNNI, then AVX2) that PODWORKER_CPU_ISA allows, as for
// the other products (cpu_kernels), else the portable one.
void matmul_kquant(kernels::GgmlType type, const std::byte* w, std::size_t row_bytes, int nblocks,
                   int r0, int r1, const ActBlock* acts, int ncols, float* out,
                   std::size_t out_stride);
// The implementations, for the tests that compare them.
void matmul_kquant_scalar(kernels::GgmlType type, const std::byte* w, std::size_t row_bytes,
                          int nblocks, int r0, int r1, const ActBlock* acts, int ncols, float* out,
                          std::size_t out_stride);
void matmul_kquant_avx2(kernels::GgmlType type, const std::byte* w, std::size_t row_bytes,
                        int nblocks, int r0, int r1, const ActBlock* acts, int ncols, float* out,
                        std::size_t out_stride);
void matmul_kquant_avx512(kernels::GgmlType type, const std::byte* w, std::size_t row_bytes,
                          int nblocks, int r0, int r1, const ActBlock* acts, int ncols, float* out,
                          std::size_t out_stride);
bool kquant_avx2_compiled();    // false: matmul_kquant_avx2 is an empty stand-in (not x86-64)
bool kquant_avx512_compiled();  // false: matmul_kquant_avx512 is an empty stand-in

}  // namespace podworker::llm::cpu

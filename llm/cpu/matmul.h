// Quantized matrix × activations for the CPU backend, one implementation per instruction set.
//
// Activations are quantized per 32 elements to 8 bits (ActBlock: like ggml's Q8_1 but with f32
// scales, which saves two conversions per block). For a weight block w and activation block a:
//   Q4_0: d_w * (d_a * Σ q_w q_a - 8 * s_a)     Q4_1: d_w d_a Σ q_w q_a + m_w s_a
//   Q8_0: d_w d_a Σ q_w q_a                      where s_a = d_a Σ q_a.
#pragma once

#include <cstddef>
#include <cstdint>

namespace podworker::llm::cpu {

struct ActBlock {
  float d;
  float s;
  std::int8_t qs[32];
};
static_assert(sizeof(ActBlock) == 40);

// out[c * out_stride + r] = row r of `w` · activation column c, for r in [r0, r1), c in [0, ncols).
// Row r starts at w + r * row_bytes; column c is acts[c * nblocks .. c * nblocks + nblocks).
using MatmulFn = void (*)(const std::byte* w, std::size_t row_bytes, int nblocks, int r0, int r1,
                          const ActBlock* acts, int ncols, float* out, std::size_t out_stride);
// Quantizes n (a multiple of 32) floats into n / 32 blocks.
using QuantizeFn = void (*)(const float* x, ActBlock* out, int n);
// One attention head over `len` cached positions: scores[p] = scale * q · k_p, softmax over p,
// out = Σ_p softmax_p v_p. Position p's key is k + p * kv_stride (same for v); `scores` holds len
// floats of scratch.
using AttendFn = void (*)(const float* q, const float* k, const float* v, int len, std::size_t kv_stride,
                          int head_dim, float scale, float* scores, float* out);

// Batch-1 products read each weight byte once, at a few GB/s per core, from the last-level cache
// or DRAM; the hardware prefetchers do not run far enough ahead of that stream, and without help
// the loads stall (the profile puts the time on the instructions right after them). Every batch-1
// kernel therefore asks for the bytes kPrefetchAhead past those it is about to read. 2 KiB (32
// lines, about 3 row pairs of a 576-wide Q4_1 matrix) measured best against 1, 1.5, 3 and 4 KiB;
// a prefetch never faults, so running past the end of a matrix costs nothing but the request (the
// address is formed as an integer: it may lie outside any object).
inline constexpr std::size_t kPrefetchAhead = 2048;
inline void prefetch_ahead(const std::byte* at, std::size_t bytes) {
  const std::uintptr_t base = reinterpret_cast<std::uintptr_t>(at) + kPrefetchAhead;
  // Four lines per iteration: a loop step per line was 3 of every 4 instructions here.
  std::size_t o = 0;
  for (; o + 256 <= bytes; o += 256) {
    __builtin_prefetch(reinterpret_cast<const void*>(base + o), 0, 3);
    __builtin_prefetch(reinterpret_cast<const void*>(base + o + 64), 0, 3);
    __builtin_prefetch(reinterpret_cast<const void*>(base + o + 128), 0, 3);
    __builtin_prefetch(reinterpret_cast<const void*>(base + o + 192), 0, 3);
  }
  for (; o < bytes; o += 64) __builtin_prefetch(reinterpret_cast<const void*>(base + o), 0, 3);
}

struct CpuKernels {
  const char* name = "none";
  MatmulFn q4_0 = nullptr;
  MatmulFn q4_1 = nullptr;
  MatmulFn q8_0 = nullptr;
  QuantizeFn quantize = nullptr;
  AttendFn attend = nullptr;
};

CpuKernels scalar_kernels();
// Null function pointers when the file was not built for x86-64.
CpuKernels avx2_kernels();    // needs AVX2, FMA, F16C
CpuKernels avx512_kernels();  // needs those and AVX512F/BW/VL/VNNI

// The fastest set this CPU supports; PODWORKER_CPU_ISA=scalar|avx2|avx512 caps the choice.
CpuKernels best_kernels();
// Every set this CPU can run (tests compare them with the scalar one).
bool cpu_supports_avx2();
bool cpu_supports_avx512();
// The widest of those this CPU has that PODWORKER_CPU_ISA=scalar|avx2|avx512 allows: the one
// choice every product family (these sets, the K-quant products) dispatches on.
enum class CpuIsa { scalar, avx2, avx512 };
CpuIsa allowed_isa();

}  // namespace podworker::llm::cpu

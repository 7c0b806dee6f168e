// AVX512-VNNI kernels, on 256-bit vectors but for the batch-1 Q4_1 / Q8_0 row pairs (512-bit):
// vpdpbusd does the u8×s8 dot product in one instruction.
// GCC 12's 512-bit intrinsics build their "undefined" upper halves (_mm512_cast*, broadcasts,
// inserts) from an uninitialized local and then warn about it inside immintrin.h; the warning's
// location is the header, so it can only be silenced before the header is read.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include "llm/cpu/matmul.h"

#if defined(PODWORKER_LLM_X86) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define PW_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#define PW_ROWS2_ZMM 1  // the batch-1 Q4_1 and Q8_0 row pairs in one 512-bit vector
#include "llm/cpu/matmul_simd.inc"

namespace podworker::llm::cpu {
CpuKernels avx512_kernels() { return {"avx512-vnni", matmul_q4_0, matmul_q4_1, matmul_q8_0, quantize, attend}; }
}  // namespace podworker::llm::cpu
#else
namespace podworker::llm::cpu {
CpuKernels avx512_kernels() { return {}; }
}  // namespace podworker::llm::cpu
#endif

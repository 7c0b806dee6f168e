// AVX512-VNNI kernels on 256-bit vectors: vpdpbusd does the u8×s8 dot product in one instruction.
#include "llm/cpu/matmul.h"

#if defined(PODWORKER_LLM_X86) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define PW_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#include "llm/cpu/matmul_simd.inc"

namespace podworker::llm::cpu {
CpuKernels avx512_kernels() { return {"avx512-vnni", matmul_q4_0, matmul_q4_1, matmul_q8_0, quantize, attend}; }
}  // namespace podworker::llm::cpu
#else
namespace podworker::llm::cpu {
CpuKernels avx512_kernels() { return {}; }
}  // namespace podworker::llm::cpu
#endif

// AVX2 + FMA + F16C kernels (u8×s8 products through vpmaddubsw + vpmaddwd).
#include "llm/cpu/matmul.h"

#if defined(PODWORKER_LLM_X86) && defined(__AVX2__)
#define PW_DOT_U8S8(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#include "llm/cpu/matmul_simd.inc"

namespace podworker::llm::cpu {
CpuKernels avx2_kernels() { return {"avx2", matmul_q4_0, matmul_q4_1, matmul_q8_0, quantize, attend}; }
}  // namespace podworker::llm::cpu
#else
namespace podworker::llm::cpu {
CpuKernels avx2_kernels() { return {}; }
}  // namespace podworker::llm::cpu
#endif

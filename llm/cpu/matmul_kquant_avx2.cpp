// AVX2 + FMA + F16C versions of the K-quant and Q5_0 products (u8×s8 products through vpmaddubsw +
// vpmaddwd, as in matmul_avx2.cpp); the body is matmul_kquant_simd.inc.
#include "llm/cpu/matmul_kquant.h"

#if defined(PODWORKER_LLM_X86) && defined(__AVX2__)
#define PW_DOT_U8S8(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16((u), (s)), _mm256_set1_epi16(1))
#define PW_KQUANT_FN matmul_kquant_avx2
#include "llm/cpu/matmul_kquant_simd.inc"

namespace podworker::llm::cpu {
bool kquant_avx2_compiled() {
  return true;
}
}  // namespace podworker::llm::cpu
#else
namespace podworker::llm::cpu {
void matmul_kquant_avx2(kernels::GgmlType, const std::byte*, std::size_t, int, int, int,
                        const ActBlock*, int, float*, std::size_t) {}
bool kquant_avx2_compiled() {
  return false;
}
}  // namespace podworker::llm::cpu
#endif

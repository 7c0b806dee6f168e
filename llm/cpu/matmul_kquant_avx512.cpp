// AVX512-VNNI versions of the K-quant and Q5_0 products on 256-bit vectors: vpdpbusd does the
// u8×s8 dot product in one instruction where AVX2 needs vpmaddubsw + vpmaddwd (the same integer
// sums, so the same results as matmul_kquant_avx2). The body is matmul_kquant_simd.inc.
#include "llm/cpu/matmul_kquant.h"

#if defined(PODWORKER_LLM_X86) && defined(__AVX512VNNI__) && defined(__AVX512VL__)
#define PW_DOT_U8S8(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), (u), (s))
#define PW_KQUANT_FN matmul_kquant_avx512
#define PW_KQUANT_VNNI 1  // also the VNNI-only batch-1 Q5_0 product
#include "llm/cpu/matmul_kquant_simd.inc"

namespace podworker::llm::cpu {
bool kquant_avx512_compiled() {
  return true;
}
}  // namespace podworker::llm::cpu
#else
namespace podworker::llm::cpu {
void matmul_kquant_avx512(kernels::GgmlType, const std::byte*, std::size_t, int, int, int,
                          const ActBlock*, int, float*, std::size_t) {}
bool kquant_avx512_compiled() {
  return false;
}
}  // namespace podworker::llm::cpu
#endif

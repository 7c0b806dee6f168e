// Portable kernels: the reference the SIMD versions are tested against, and the fallback.
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "kernels/attention.h"
#include "kernels/ggml_types.h"
#include "kernels/half.h"
#include "llm/cpu/matmul.h"

namespace podworker::llm::cpu {

namespace {

using kernels::BlockQ4_0;
using kernels::BlockQ4_1;
using kernels::BlockQ8_0;
using kernels::fp16_to_fp32;

// Nibble order as ggml stores it: low nibbles are elements 0..15, high nibbles 16..31.
int dot_nibbles(const std::uint8_t* qs, const std::int8_t* a) {
  int sum = 0;
  for (int j = 0; j < 16; ++j) {
    sum += (qs[j] & 0x0F) * a[j];
    sum += (qs[j] >> 4) * a[j + 16];
  }
  return sum;
}

void matmul_q4_0(const std::byte* w, std::size_t row_bytes, int nblocks, int r0, int r1, const ActBlock* acts,
                 int ncols, float* out, std::size_t out_stride) {
  for (int r = r0; r < r1; ++r) {
    const auto* row = reinterpret_cast<const BlockQ4_0*>(w + static_cast<std::size_t>(r) * row_bytes);
    for (int c = 0; c < ncols; ++c) {
      const ActBlock* a = acts + static_cast<std::size_t>(c) * nblocks;
      float sum = 0;
      for (int b = 0; b < nblocks; ++b) {
        const float dw = fp16_to_fp32(row[b].d);
        sum += dw * (a[b].d * static_cast<float>(dot_nibbles(row[b].qs, a[b].qs)) - 8.0f * a[b].s);
      }
      out[static_cast<std::size_t>(c) * out_stride + static_cast<std::size_t>(r)] = sum;
    }
  }
}

void matmul_q4_1(const std::byte* w, std::size_t row_bytes, int nblocks, int r0, int r1, const ActBlock* acts,
                 int ncols, float* out, std::size_t out_stride) {
  for (int r = r0; r < r1; ++r) {
    const auto* row = reinterpret_cast<const BlockQ4_1*>(w + static_cast<std::size_t>(r) * row_bytes);
    for (int c = 0; c < ncols; ++c) {
      const ActBlock* a = acts + static_cast<std::size_t>(c) * nblocks;
      float sum = 0;
      for (int b = 0; b < nblocks; ++b) {
        const float dw = fp16_to_fp32(row[b].d);
        const float mw = fp16_to_fp32(row[b].m);
        sum += dw * a[b].d * static_cast<float>(dot_nibbles(row[b].qs, a[b].qs)) + mw * a[b].s;
      }
      out[static_cast<std::size_t>(c) * out_stride + static_cast<std::size_t>(r)] = sum;
    }
  }
}

void matmul_q8_0(const std::byte* w, std::size_t row_bytes, int nblocks, int r0, int r1, const ActBlock* acts,
                 int ncols, float* out, std::size_t out_stride) {
  for (int r = r0; r < r1; ++r) {
    const auto* row = reinterpret_cast<const BlockQ8_0*>(w + static_cast<std::size_t>(r) * row_bytes);
    for (int c = 0; c < ncols; ++c) {
      const ActBlock* a = acts + static_cast<std::size_t>(c) * nblocks;
      float sum = 0;
      for (int b = 0; b < nblocks; ++b) {
        int dot = 0;
        for (int j = 0; j < 32; ++j) dot += row[b].qs[j] * a[b].qs[j];
        sum += fp16_to_fp32(row[b].d) * a[b].d * static_cast<float>(dot);
      }
      out[static_cast<std::size_t>(c) * out_stride + static_cast<std::size_t>(r)] = sum;
    }
  }
}

void quantize_scalar(const float* x, ActBlock* out, int n) {
  for (int b = 0; b < n / 32; ++b) {
    const float* v = x + b * 32;
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::fmax(amax, std::fabs(v[j]));
    const float d = amax / 127.0f;
    const float id = d > 0 ? 1.0f / d : 0.0f;
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      const int q = static_cast<int>(std::nearbyint(v[j] * id));
      out[b].qs[j] = static_cast<std::int8_t>(q);
      sum += q;
    }
    out[b].d = d;
    out[b].s = d * static_cast<float>(sum);
  }
}

// The portable attention is the reference itself; `scores` is not needed.
void attend_scalar(const float* q, const float* k, const float* v, int len, std::size_t kv_stride, int head_dim,
                   float scale, float*, float* out) {
  kernels::cpu::attend_head(q, k, v, len, static_cast<std::int64_t>(kv_stride), head_dim, scale, out);
}

}  // namespace

CpuKernels scalar_kernels() { return {"scalar", matmul_q4_0, matmul_q4_1, matmul_q8_0, quantize_scalar, attend_scalar}; }

bool cpu_supports_avx2() {
#if defined(PODWORKER_LLM_X86)
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

bool cpu_supports_avx512() {
#if defined(PODWORKER_LLM_X86)
  return cpu_supports_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
#else
  return false;
#endif
}

CpuIsa allowed_isa() {
  const char* cap_env = std::getenv("PODWORKER_CPU_ISA");
  const std::string_view cap = cap_env ? cap_env : "";
  if (cap == "scalar") return CpuIsa::scalar;
  if (cap != "avx2" && cpu_supports_avx512()) return CpuIsa::avx512;
  return cpu_supports_avx2() ? CpuIsa::avx2 : CpuIsa::scalar;
}

CpuKernels best_kernels() {
  const CpuIsa isa = allowed_isa();
  if (isa == CpuIsa::avx512 && avx512_kernels().q4_1) return avx512_kernels();
  if (isa >= CpuIsa::avx2 && avx2_kernels().q4_1) return avx2_kernels();
  return scalar_kernels();
}

}  // namespace podworker::llm::cpu

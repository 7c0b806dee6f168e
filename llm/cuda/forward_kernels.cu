// The backend's own kernels (see forward_kernels.h): fused RoPE + KV-cache store, SwiGLU over a fused
// gate|up buffer, and RMSNorm with F16 output for the prefill GEMMs.
#include <cuda_fp16.h>

#include <stdexcept>

#include "llm/cuda/cuda_check.h"
#include "llm/cuda/forward_kernels.h"

namespace podworker::llm::cuda {

namespace {

// One block per token. Threads first rotate every (head, pair) of q and k, then copy k and v to the
// cache; the barrier between makes the rotated k visible to the copy.
__global__ void rope_store_kernel(float* __restrict__ qkv, std::int64_t stride, RopeStoreShape s,
                                  float* __restrict__ k_cache, float* __restrict__ v_cache,
                                  const int* __restrict__ slots, const int* __restrict__ pos) {
  const std::int64_t t = blockIdx.x;
  float* row = qkv + t * stride;
  const int p = pos[t];
  const int half = s.head_dim / 2;
  const int rotated_heads = s.n_head + s.n_head_kv;  // q heads then k heads, contiguous in the row
  for (int i = static_cast<int>(threadIdx.x); i < rotated_heads * half; i += static_cast<int>(blockDim.x)) {
    const int head = i / half;
    const int pair = i % half;
    // Double precision: at positions of thousands a float angle is off by ~1e-4 rad, and the fast-math
    // float sine is worse still outside [-pi, pi].
    const double theta = static_cast<double>(p) * pow(static_cast<double>(s.rope_base), -2.0 * pair / s.head_dim);
    double sn = 0.0, cs = 0.0;
    sincos(theta, &sn, &cs);
    float2* v = reinterpret_cast<float2*>(row + head * s.head_dim) + pair;
    const float2 a = *v;
    const float c = static_cast<float>(cs), sf = static_cast<float>(sn);
    *v = make_float2(a.x * c - a.y * sf, a.x * sf + a.y * c);
  }
  // Never write outside the cache (uniform across the block).
  if (p < 0 || p >= s.max_ctx || slots[t] < 0 || slots[t] >= s.n_slots) return;
  __syncthreads();
  const int kv_dim = s.n_head_kv * s.head_dim;
  const float* k = row + s.n_head * s.head_dim;
  const float* v = k + kv_dim;
  const std::int64_t at = (static_cast<std::int64_t>(slots[t]) * s.max_ctx + p) * kv_dim;
  for (int i = static_cast<int>(threadIdx.x); i < kv_dim; i += static_cast<int>(blockDim.x)) {
    k_cache[at + i] = k[i];
    v_cache[at + i] = v[i];
  }
}

__device__ __forceinline__ float silu_mul(float g, float u) {
  // 1 / (1 + e^-g) goes to 0 (not NaN) when e^-g overflows.
  return g * __frcp_rn(1.0f + __expf(-g)) * u;
}

__device__ __forceinline__ void store(float* p, float v) { *p = v; }
__device__ __forceinline__ void store(kernels::half_bits* p, float v) {
  *reinterpret_cast<__half*>(p) = __float2half_rn(v);
}

template <class Out>
__global__ void swiglu_fused_kernel(const float* __restrict__ gu, std::int64_t tokens, int n_ff, Out* __restrict__ out) {
  const std::int64_t n = tokens * n_ff;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<std::int64_t>(gridDim.x) * blockDim.x) {
    const std::int64_t t = i / n_ff;
    const std::int64_t j = i % n_ff;
    const float* row = gu + t * 2 * n_ff;
    store(out + i, silu_mul(row[j], row[n_ff + j]));
  }
}

// One block per row; the sum of squares is reduced over the block.
__global__ void rmsnorm_f16_kernel(const float* __restrict__ x, const float* __restrict__ w,
                                   kernels::half_bits* __restrict__ out, int dim, float eps) {
  const float* xr = x + static_cast<std::int64_t>(blockIdx.x) * dim;
  float ss = 0.0f;
  for (int i = static_cast<int>(threadIdx.x); i < dim; i += static_cast<int>(blockDim.x)) ss += xr[i] * xr[i];
  __shared__ float partial[32];
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, o);
  if (threadIdx.x % 32 == 0) partial[threadIdx.x / 32] = ss;
  __syncthreads();
  float total = 0.0f;
  for (int i = 0; i < static_cast<int>(blockDim.x / 32); ++i) total += partial[i];
  const float scale = rsqrtf(total / static_cast<float>(dim) + eps);
  kernels::half_bits* o = out + static_cast<std::int64_t>(blockIdx.x) * dim;
  for (int i = static_cast<int>(threadIdx.x); i < dim; i += static_cast<int>(blockDim.x)) store(o + i, xr[i] * scale * w[i]);
}


constexpr int kAttnThreads = 256;

__device__ __forceinline__ float block_reduce(float v, float* scratch, bool is_max) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const float other = __shfl_xor_sync(0xffffffffu, v, o);
    v = is_max ? fmaxf(v, other) : v + other;
  }
  __syncthreads();  // scratch may still be read by a previous reduction
  if (threadIdx.x % 32 == 0) scratch[threadIdx.x / 32] = v;
  __syncthreads();
  v = scratch[0];
  for (int w = 1; w < kAttnThreads / 32; ++w) v = is_max ? fmaxf(v, scratch[w]) : v + scratch[w];
  return v;
}

template <int HD>
__global__ void __launch_bounds__(kAttnThreads)
    decode_attention_kernel(const float* __restrict__ q, std::int64_t q_stride, const float* __restrict__ k_cache,
                            const float* __restrict__ v_cache, float* __restrict__ out, int n_head, int n_head_kv,
                            std::int64_t max_ctx, int n_slots, const int* __restrict__ slots,
                            const int* __restrict__ lens, float scale) {
  constexpr int kVec = HD / 4;                     // float4s per head row
  constexpr int kGroups = kAttnThreads / kVec;     // positions summed in parallel in the V pass
  extern __shared__ float scores[];                // [max_ctx]
  __shared__ float4 qs[kVec];
  __shared__ float4 partial[kGroups][kVec];
  __shared__ float scratch[kAttnThreads / 32];

  const int head = static_cast<int>(blockIdx.x);
  const int b = static_cast<int>(blockIdx.y);
  const int tid = static_cast<int>(threadIdx.x);
  const int kv_head = head / (n_head / n_head_kv);
  const std::int64_t kv_dim = static_cast<std::int64_t>(n_head_kv) * HD;
  // A slot outside the cache reads nothing (length 0: a zero output); a length is clamped to the slot.
  const bool bad_slot = slots[b] < 0 || slots[b] >= n_slots;
  const int len = bad_slot ? 0 : static_cast<int>(min(static_cast<std::int64_t>(lens[b]), max_ctx));
  const std::int64_t base = static_cast<std::int64_t>(bad_slot ? 0 : slots[b]) * max_ctx * kv_dim + kv_head * HD;
  const float* kb = k_cache + base;
  const float* vb = v_cache + base;

  if (tid < kVec) {
    float4 v = reinterpret_cast<const float4*>(q + b * q_stride + head * HD)[tid];
    qs[tid] = make_float4(v.x * scale, v.y * scale, v.z * scale, v.w * scale);
  }
  __syncthreads();

  float local_max = -INFINITY;
  for (int p = tid; p < len; p += kAttnThreads) {
    const float4* kp = reinterpret_cast<const float4*>(kb + p * kv_dim);
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < kVec; ++i) {
      const float4 k = __ldg(kp + i);
      const float4 qq = qs[i];
      s += qq.x * k.x + qq.y * k.y + qq.z * k.z + qq.w * k.w;
    }
    scores[p] = s;
    local_max = fmaxf(local_max, s);
  }
  const float m = block_reduce(local_max, scratch, true);
  float local_sum = 0.0f;
  for (int p = tid; p < len; p += kAttnThreads) {
    const float e = __expf(scores[p] - m);
    scores[p] = e;
    local_sum += e;
  }
  const float total = block_reduce(local_sum, scratch, false);  // its barriers publish the scores

  const int group = tid / kVec;
  const int lane = tid % kVec;
  float4 acc = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
#pragma unroll 4
  for (int p = group; p < len; p += kGroups) {
    const float w = scores[p];
    const float4 v = __ldg(reinterpret_cast<const float4*>(vb + p * kv_dim) + lane);
    acc.x += w * v.x;
    acc.y += w * v.y;
    acc.z += w * v.z;
    acc.w += w * v.w;
  }
  partial[group][lane] = acc;
  __syncthreads();
  if (tid < kVec) {
    float4 sum = partial[0][tid];
    for (int g = 1; g < kGroups; ++g) {
      const float4 o = partial[g][tid];
      sum.x += o.x;
      sum.y += o.y;
      sum.z += o.z;
      sum.w += o.w;
    }
    // len 0 (a bad length from device memory) attends to nothing: zeros, not 0/0.
    const float inv = total > 0.0f ? 1.0f / total : 0.0f;
    reinterpret_cast<float4*>(out + (static_cast<std::int64_t>(b) * n_head + head) * HD)[tid] =
        make_float4(sum.x * inv, sum.y * inv, sum.z * inv, sum.w * inv);
  }
}

unsigned grid_for(std::int64_t n, int threads) {
  const std::int64_t blocks = (n + threads - 1) / threads;
  return static_cast<unsigned>(blocks < 65535 ? blocks : 65535);  // grid-stride loops cover the rest
}

}  // namespace

void rope_store(float* qkv, std::int64_t stride, std::int64_t tokens, const RopeStoreShape& shape, float* k_cache,
                float* v_cache, const int* d_slots, const int* d_pos, kernels::cuda::StreamView stream) {
  if (tokens <= 0) return;
  rope_store_kernel<<<static_cast<unsigned>(tokens), 256, 0, native(stream)>>>(qkv, stride, shape, k_cache, v_cache,
                                                                                d_slots, d_pos);
  check_launch("rope_store_kernel");
}

void swiglu_fused(const float* gu, std::int64_t tokens, int n_ff, float* out, kernels::cuda::StreamView stream) {
  if (tokens <= 0) return;
  swiglu_fused_kernel<<<grid_for(tokens * n_ff, 256), 256, 0, native(stream)>>>(gu, tokens, n_ff, out);
  check_launch("swiglu_fused_kernel");
}

void swiglu_fused(const float* gu, std::int64_t tokens, int n_ff, kernels::half_bits* out,
                  kernels::cuda::StreamView stream) {
  if (tokens <= 0) return;
  swiglu_fused_kernel<<<grid_for(tokens * n_ff, 256), 256, 0, native(stream)>>>(gu, tokens, n_ff, out);
  check_launch("swiglu_fused_kernel");
}

void rmsnorm_to_f16(const float* x, const float* weight, kernels::half_bits* out, std::int64_t rows, int dim,
                    float eps, kernels::cuda::StreamView stream) {
  if (rows <= 0) return;
  rmsnorm_f16_kernel<<<static_cast<unsigned>(rows), 256, 0, native(stream)>>>(x, weight, out, dim, eps);
  check_launch("rmsnorm_f16_kernel");
}

namespace {
// Dynamic shared memory a block of decode_attention_kernel<HD> may use for its scores on the current
// device: the device's opt-in per-block limit (99 KiB on sm_86/89, 163 KiB on A100, 227 KiB on
// Hopper) less the kernel's static arrays.
template <int HD>
std::int64_t max_score_bytes() {
  int device = 0;
  check(cudaGetDevice(&device), "cudaGetDevice");
  int optin = 0;
  check(cudaDeviceGetAttribute(&optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, device),
        "cudaDeviceGetAttribute(MaxSharedMemoryPerBlockOptin)");
  cudaFuncAttributes attr{};
  check(cudaFuncGetAttributes(&attr, decode_attention_kernel<HD>), "cudaFuncGetAttributes(decode_attention_kernel)");
  return static_cast<std::int64_t>(optin) - static_cast<std::int64_t>(attr.sharedSizeBytes);
}
}  // namespace

bool decode_attention_supported(int head_dim, std::int64_t max_ctx) {
  if (max_ctx <= 0) return false;
  const std::int64_t bytes = max_ctx * static_cast<std::int64_t>(sizeof(float));
  switch (head_dim) {
    case 32: return bytes <= max_score_bytes<32>();
    case 64: return bytes <= max_score_bytes<64>();
    case 128: return bytes <= max_score_bytes<128>();
    default: return false;
  }
}

namespace {
template <int HD>
void set_smem_limit(std::int64_t max_ctx) {
  check(cudaFuncSetAttribute(decode_attention_kernel<HD>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(max_ctx * static_cast<std::int64_t>(sizeof(float)))),
        "cudaFuncSetAttribute(decode_attention_kernel)");
}
}  // namespace

void prepare_decode_attention(int head_dim, std::int64_t max_ctx) {
  if (!decode_attention_supported(head_dim, max_ctx)) return;
  switch (head_dim) {
    case 32: return set_smem_limit<32>(max_ctx);
    case 64: return set_smem_limit<64>(max_ctx);
    default: return set_smem_limit<128>(max_ctx);
  }
}

void decode_attention(const float* q, std::int64_t q_stride, const float* k_cache, const float* v_cache, float* out,
                      int batch, int n_head, int n_head_kv, int head_dim, std::int64_t max_ctx, int n_slots,
                      const int* d_slots, const int* d_lens, float scale, kernels::cuda::StreamView stream) {
  if (batch <= 0) return;
  const dim3 grid(static_cast<unsigned>(n_head), static_cast<unsigned>(batch));
  const std::size_t smem = static_cast<std::size_t>(max_ctx) * sizeof(float);
  switch (head_dim) {
    case 32:
      decode_attention_kernel<32><<<grid, kAttnThreads, smem, native(stream)>>>(
          q, q_stride, k_cache, v_cache, out, n_head, n_head_kv, max_ctx, n_slots, d_slots, d_lens, scale);
      break;
    case 64:
      decode_attention_kernel<64><<<grid, kAttnThreads, smem, native(stream)>>>(
          q, q_stride, k_cache, v_cache, out, n_head, n_head_kv, max_ctx, n_slots, d_slots, d_lens, scale);
      break;
    case 128:
      decode_attention_kernel<128><<<grid, kAttnThreads, smem, native(stream)>>>(
          q, q_stride, k_cache, v_cache, out, n_head, n_head_kv, max_ctx, n_slots, d_slots, d_lens, scale);
      break;
    default: throw std::invalid_argument("decode_attention: head_dim must be 32, 64 or 128");
  }
  check_launch("decode_attention_kernel");
}

}  // namespace podworker::llm::cuda

// Sampling on the device, one block per sequence; the definition is in kernels/sampling.h.
// Weights are integers (fixed point, from sample_weight, bit-identical to the host's) so every sum
// is exact and order-independent. Thresholds for top-k (by count) and top-p (by mass) are found by
// radix selection over the weight bits, 8 bits per pass with a shared-memory histogram, recomputing the weights from the logits each pass instead of storing
// them. The draw scans per-thread chunks in vocabulary order with a block-wide prefix sum.
#include "kernels/cuda/common.cuh"
#include "kernels/sampling.h"

#include <stdexcept>

namespace podworker::kernels::cuda {

namespace {

constexpr int kThreads = 1024;
using u64 = unsigned long long;

__device__ __forceinline__ u64 weight_of(float logit, float max, float temperature) {
  return sample_weight(logit, max, temperature);
}

// Block-wide argmax, lowest index among equal maxima. Every thread gets the result.
__device__ void block_argmax(const float* row, int vocab, float& best_value, int& best_index) {
  float v = -INFINITY;
  int idx = vocab;
  for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
    if (row[i] > v) {  // strictly greater: a thread visits indices in increasing order
      v = row[i];
      idx = i;
    }
  }
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, offset);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, offset);
    if (ov > v || (ov == v && oi < idx)) {
      v = ov;
      idx = oi;
    }
  }
  __shared__ float s_v[32];
  __shared__ int s_i[32];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) {
    s_v[warp] = v;
    s_i[warp] = idx;
  }
  __syncthreads();
  const int warps = blockDim.x / 32;
  v = lane < warps ? s_v[lane] : -INFINITY;
  idx = lane < warps ? s_i[lane] : vocab;
  for (int offset = 16; offset > 0; offset >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, v, offset);
    const int oi = __shfl_xor_sync(0xffffffffu, idx, offset);
    if (ov > v || (ov == v && oi < idx)) {
      v = ov;
      idx = oi;
    }
  }
  best_value = v;
  best_index = idx < vocab ? idx : 0;  // all-NaN rows fall back to token 0
}

__device__ u64 block_sum_u64(u64 v) {
  __shared__ u64 partial[32];
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < static_cast<int>(blockDim.x / 32) ? partial[lane] : 0;
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// Largest t such that sum over elements with floor <= w and w >= t of (mass ? w : 1) >= target.
// Weights are below 2^33, so five 8-bit digits (bits 39..0) cover them.
__device__ u64 radix_select(const float* row, int vocab, float max, float temperature, u64 floor, bool mass,
                            u64 target) {
  __shared__ u64 hist[256];
  __shared__ u64 s_prefix, s_above;
  __syncthreads();  // a previous call's result may still be being read
  if (threadIdx.x == 0) {
    s_prefix = 0;
    s_above = 0;
  }
  for (int shift = 32; shift >= 0; shift -= 8) {
    for (int i = threadIdx.x; i < 256; i += blockDim.x) hist[i] = 0;
    __syncthreads();
    const u64 prefix = s_prefix;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      const u64 w = weight_of(row[i], max, temperature);
      if (w < floor) continue;
      if ((w >> (shift + 8)) != (prefix >> (shift + 8))) continue;  // differs in the bits already fixed
      atomicAdd(&hist[(w >> shift) & 255u], mass ? w : 1ull);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      u64 cum = s_above;
      int digit = 0;
      for (int d = 255; d >= 0; --d) {
        if (cum + hist[d] >= target) {
          digit = d;
          break;
        }
        cum += hist[d];
      }
      s_above = cum;
      s_prefix = prefix | (static_cast<u64>(digit) << shift);
    }
    __syncthreads();
  }
  return s_prefix;
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* __restrict__ logits, int vocab, const SampleParams* __restrict__ params,
                  const int* __restrict__ counters, int* __restrict__ tokens) {
  const float* row = logits + static_cast<std::int64_t>(blockIdx.x) * vocab;
  const SampleParams p = params[blockIdx.x];
  float max = 0.0f;
  int best = 0;
  block_argmax(row, vocab, max, best);
  if (!(p.temperature > 0.0f)) {
    if (threadIdx.x == 0) tokens[blockIdx.x] = best;
    return;
  }
  u64 threshold = 0;
  if (p.top_k > 0 && p.top_k < vocab) {
    threshold = radix_select(row, vocab, max, p.temperature, 0, false, static_cast<u64>(p.top_k));
  }
  if (p.top_p < 1.0f) {
    u64 kept = 0;
    for (int i = threadIdx.x; i < vocab; i += blockDim.x) {
      const u64 w = weight_of(row[i], max, p.temperature);
      kept += w >= threshold ? w : 0;
    }
    kept = block_sum_u64(kept);
    const auto want = static_cast<u64>(ceil(static_cast<double>(fmaxf(p.top_p, 0.0f)) * static_cast<double>(kept)));
    const u64 target = want > 0 ? want : 1;
    threshold = radix_select(row, vocab, max, p.temperature, threshold, true, target);
  }

  // Draw: each thread owns a contiguous chunk, so a prefix sum over threads is in vocabulary order.
  const int chunk = (vocab + kThreads - 1) / kThreads;
  const int begin = min(vocab, static_cast<int>(threadIdx.x) * chunk);
  const int end = min(vocab, begin + chunk);
  u64 mine = 0;
  for (int i = begin; i < end; ++i) {
    const u64 w = weight_of(row[i], max, p.temperature);
    mine += w >= threshold ? w : 0;
  }
  // Inclusive scan: within warps by shuffles, then over warp totals.
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  u64 incl = mine;
  for (int offset = 1; offset < 32; offset <<= 1) {
    const u64 o = __shfl_up_sync(0xffffffffu, incl, offset);
    if (lane >= offset) incl += o;
  }
  __shared__ u64 warp_total[32];
  __shared__ u64 s_total;
  if (lane == 31) warp_total[warp] = incl;
  __syncthreads();
  if (threadIdx.x == 0) {
    u64 run = 0;
    for (int w = 0; w < kThreads / 32; ++w) {
      const u64 t = warp_total[w];
      warp_total[w] = run;  // becomes the exclusive offset of warp w
      run += t;
    }
    s_total = run;
  }
  __syncthreads();
  incl += warp_total[warp];
  const u64 total = s_total;
  if (total == 0) {
    if (threadIdx.x == 0) tokens[blockIdx.x] = best;
    return;
  }
  // The fallback is written first, then (after the barrier) overwritten by the one thread whose chunk
  // holds the draw.
  if (threadIdx.x == 0) tokens[blockIdx.x] = best;
  __syncthreads();
  const u64 r = draw_below(random_u64(p.seed, static_cast<std::uint64_t>(counters[blockIdx.x])), total);
  const u64 excl = incl - mine;
  if (mine > 0 && excl <= r && r < incl) {
    u64 running = excl;
    for (int i = begin; i < end; ++i) {
      const u64 w = weight_of(row[i], max, p.temperature);
      running += w >= threshold ? w : 0;
      if (running > r) {
        tokens[blockIdx.x] = i;
        return;
      }
    }
  }
}

__global__ void __launch_bounds__(kThreads) argmax_kernel(const float* __restrict__ logits, int vocab, int* tokens) {
  float v = 0.0f;
  int best = 0;
  block_argmax(logits + static_cast<std::int64_t>(blockIdx.x) * vocab, vocab, v, best);
  if (threadIdx.x == 0) tokens[blockIdx.x] = best;
}

}  // namespace

void sample(const float* logits, int batch, int vocab, const SampleParams* d_params, const int* d_counters,
            int* d_tokens, StreamView stream) {
  if (batch <= 0) return;
  if (vocab <= 0) throw std::invalid_argument("cuda::sample: empty vocabulary");
  sample_kernel<<<static_cast<unsigned>(batch), kThreads, 0, detail::native(stream)>>>(logits, vocab, d_params,
                                                                                       d_counters, d_tokens);
  detail::check_launch("sample_kernel");
}

void argmax(const float* logits, int batch, int vocab, int* d_tokens, StreamView stream) {
  if (batch <= 0) return;
  if (vocab <= 0) throw std::invalid_argument("cuda::argmax: empty vocabulary");
  argmax_kernel<<<static_cast<unsigned>(batch), kThreads, 0, detail::native(stream)>>>(logits, vocab, d_tokens);
  detail::check_launch("argmax_kernel");
}

}  // namespace podworker::kernels::cuda

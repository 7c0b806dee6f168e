// Mat-vec (decode) and small-batch products straight from the K-quant layouts (Q4_K, Q5_K, Q6_K;
// kernels/ggml_types.h) on the GPU, without an F16 copy of the weights: a Q4_K_M model keeps its
// 4.5-6.6 bits per weight in device memory and each decode step reads only those bytes.
//
// Same contract as kernels/matvec.h: W has `rows` rows of `k` elements, each row stored in
// `wtype`'s 256-element super-blocks (k a multiple of 256); x is [batch, k] row-major F32, y is
// [batch, rows]: y[b, r] = sum_j W[r, j] x[b, j] (+ y[b, r] when `accumulate`). Each weight is the
// value the CPU reference dequantizes (kernels/cpu/kquant.cpp), summed in F32 in another order, so
// the result matches kernels::cpu::matvec up to summation order.
#pragma once

#include <cstdint>

#include "kernels/device.h"
#include "kernels/ggml_types.h"

namespace podworker::kernels::cuda {

// wtype Q4_K, Q5_K or Q6_K; batch in [1, kMaxMatvecBatch] (kernels/matvec.h); w 4-byte aligned
// (Q4_K, Q5_K) or 2-byte aligned (Q6_K), x 16-byte aligned. Throws std::invalid_argument otherwise.
void matvec_kquant(GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const float* x,
                   float* y, int batch, bool accumulate, StreamView stream);

}  // namespace podworker::kernels::cuda

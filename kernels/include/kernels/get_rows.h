// Embedding lookup (ggml's get_rows): out[t, :] = dequantize(table row ids[t]); table is [n_rows, dim]
// in `type` (Q8_0 for SmolLM2; also Q4_0, Q4_1, F16, F32, Q6_K). ids outside [0, n_rows) produce a
// zero row rather than reading out of bounds (the CPU version throws std::out_of_range).
#pragma once

#include <cstdint>

#include "kernels/device.h"
#include "kernels/ggml_types.h"

namespace podworker::kernels {
namespace cpu {
void get_rows(GgmlType type, const void* table, std::int64_t n_rows, std::int64_t dim, const int* ids,
              std::int64_t n_ids, float* out);
}
namespace cuda {
void get_rows(GgmlType type, const void* table, std::int64_t n_rows, std::int64_t dim, const int* d_ids,
              std::int64_t n_ids, float* out, StreamView stream);
}
}  // namespace podworker::kernels

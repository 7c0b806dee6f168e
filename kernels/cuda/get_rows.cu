// Embedding lookup: one block per id, each thread dequantizes elements of the row. Ids outside the
// table produce a zero row (a bad id must not read out of bounds on the device).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/kquant.cuh"
#include "kernels/dequantize.h"
#include "kernels/get_rows.h"

#include <stdexcept>

namespace podworker::kernels::cuda {

namespace {

template <GgmlType T>
__global__ void get_rows_kernel(const std::uint8_t* __restrict__ table, std::int64_t n_rows, std::int64_t dim,
                                std::size_t row_bytes, const int* __restrict__ ids, float* __restrict__ out) {
  const int id = ids[blockIdx.x];
  float* o = out + blockIdx.x * dim;
  const bool valid = id >= 0 && id < n_rows;
  const std::uint8_t* row = table + (valid ? static_cast<std::size_t>(id) * row_bytes : 0);
  for (std::int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    o[i] = valid ? detail::block_element<T>(row, i) : 0.0f;
  }
}

template <GgmlType T>
void launch(const void* table, std::int64_t n_rows, std::int64_t dim, const int* ids, std::int64_t n_ids, float* out,
            StreamView stream) {
  get_rows_kernel<T><<<static_cast<unsigned>(n_ids), 256, 0, detail::native(stream)>>>(
      static_cast<const std::uint8_t*>(table), n_rows, dim, tensor_bytes(T, dim), ids, out);
  detail::check_launch("get_rows_kernel");
}

}  // namespace

void get_rows(GgmlType type, const void* table, std::int64_t n_rows, std::int64_t dim, const int* d_ids,
              std::int64_t n_ids, float* out, StreamView stream) {
  if (n_ids <= 0) return;
  switch (type) {
    case GgmlType::f32: return launch<GgmlType::f32>(table, n_rows, dim, d_ids, n_ids, out, stream);
    case GgmlType::f16: return launch<GgmlType::f16>(table, n_rows, dim, d_ids, n_ids, out, stream);
    case GgmlType::bf16: return launch<GgmlType::bf16>(table, n_rows, dim, d_ids, n_ids, out, stream);
    case GgmlType::q4_0: return launch<GgmlType::q4_0>(table, n_rows, dim, d_ids, n_ids, out, stream);
    case GgmlType::q4_1: return launch<GgmlType::q4_1>(table, n_rows, dim, d_ids, n_ids, out, stream);
    case GgmlType::q8_0: return launch<GgmlType::q8_0>(table, n_rows, dim, d_ids, n_ids, out, stream);
    case GgmlType::q6_k: return launch<GgmlType::q6_k>(table, n_rows, dim, d_ids, n_ids, out, stream);
    case GgmlType::q5_0: return launch<GgmlType::q5_0>(table, n_rows, dim, d_ids, n_ids, out, stream);
    case GgmlType::q4_k: return launch<GgmlType::q4_k>(table, n_rows, dim, d_ids, n_ids, out, stream);
    case GgmlType::q5_k: return launch<GgmlType::q5_k>(table, n_rows, dim, d_ids, n_ids, out, stream);
    default: break;
  }
  throw std::invalid_argument("cuda::get_rows: unsupported type " + std::string(type_name(type)));
}

}  // namespace podworker::kernels::cuda

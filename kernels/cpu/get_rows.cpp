// CPU reference embedding lookup.
#include "kernels/get_rows.h"

#include <stdexcept>

#include "kernels/dequantize.h"

namespace podworker::kernels::cpu {

void get_rows(GgmlType type, const void* table, std::int64_t n_rows, std::int64_t dim, const int* ids,
              std::int64_t n_ids, float* out) {
  const std::size_t row_bytes = tensor_bytes(type, dim);
  for (std::int64_t t = 0; t < n_ids; ++t) {
    if (ids[t] < 0 || ids[t] >= n_rows) throw std::out_of_range("get_rows: token id outside the table");
    dequantize(type, static_cast<const std::byte*>(table) + ids[t] * row_bytes, out + t * dim, dim);
  }
}

}  // namespace podworker::kernels::cpu

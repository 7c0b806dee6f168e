// CPU reference for the quantized mat-vec and (with batch = tokens) for the GEMM: dequantize one row,
// then dot products in double. Slow and obviously right.
#include "kernels/matvec.h"

#include <stdexcept>
#include <vector>

#include "kernels/dequantize.h"

namespace podworker::kernels::cpu {

void matvec(GgmlType wtype, const void* w, std::int64_t rows, std::int64_t k, const float* x, float* y, int batch,
            bool accumulate) {
  if (rows < 0 || k < 0 || batch < 1) throw std::invalid_argument("matvec: bad dimensions");
  const std::size_t row_bytes = tensor_bytes(wtype, k);
  std::vector<float> row(static_cast<std::size_t>(k));
  for (std::int64_t r = 0; r < rows; ++r) {
    dequantize(wtype, static_cast<const std::byte*>(w) + r * row_bytes, row.data(), k);
    for (int b = 0; b < batch; ++b) {
      const float* xb = x + b * k;
      double sum = 0.0;
      for (std::int64_t j = 0; j < k; ++j) sum += static_cast<double>(row[j]) * xb[j];
      float& out = y[b * rows + r];
      out = static_cast<float>(accumulate ? out + sum : sum);
    }
  }
}

}  // namespace podworker::kernels::cpu

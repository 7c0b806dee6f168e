// SwiGLU gating of the llama FFN: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)).
// n elements; out may alias gate or up.
#pragma once

#include <cstdint>

#include "kernels/device.h"

namespace podworker::kernels {
namespace cpu {
void swiglu(const float* gate, const float* up, float* out, std::int64_t n);
}
namespace cuda {
void swiglu(const float* gate, const float* up, float* out, std::int64_t n, StreamView stream);
}
}  // namespace podworker::kernels

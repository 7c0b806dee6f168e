// SwiGLU gating of the llama FFN: out[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + exp(-g)).
// n elements; out may alias gate or up.
#pragma once

#include <cstdint>

#include "kernels/device.h"

namespace podworker::kernels {
namespace cpu {
void swiglu(const float* gate, const float* up, float* out, std::int64_t n);
// The fused form of the fast paths (llm/cuda swiglu_fused): row t of `gate_up` holds gate (n_ff)
// then up (n_ff); out row t (n_ff values) = silu(gate) * up.
void swiglu_rows(const float* gate_up, std::int64_t tokens, std::int64_t n_ff, float* out);
}
namespace cuda {
void swiglu(const float* gate, const float* up, float* out, std::int64_t n, StreamView stream);
}
}  // namespace podworker::kernels

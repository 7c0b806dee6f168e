// Knobs of the CUDA backend beyond BackendOptions, for tests and benchmarks. make_cuda_backend()
// takes them from the environment (PODWORKER_CUDA_GRAPHS=0 turns graphs off;
// PODWORKER_CUDA_DECODE_GEMM_FROM=N runs decode batches of N or more sequences through cuBLAS on the
// F16 weight copies instead of the quantized mat-vec; PODWORKER_CUDA_FAST_ATTENTION=0 uses
// kernels::cuda::attention_decode instead of the backend's own decode attention).
#pragma once

#include <memory>

#include "llm/backend.h"

namespace podworker::llm {

struct CudaTuning {
  bool graphs = true;            // capture each decode batch-size bucket in a CUDA graph
  int decode_gemm_from = 1000;   // batches of this size or more use cuBLAS (default: never, max is 64)
  int prefill_chunk = 512;       // tokens per prefill pass (bounds the activation buffers)
  bool fast_attention = true;    // the backend's decode attention (forward_kernels.h) when it fits

  static CudaTuning from_environment();
};

std::unique_ptr<Backend> make_cuda_backend_tuned(std::shared_ptr<const LlamaWeights> weights,
                                                 const BackendOptions& options, const CudaTuning& tuning);

}  // namespace podworker::llm

// The interface of the CUDA backend module, libpodworker_cuda.so: built from llm/cuda/ and
// kernels/cuda/ with cudart and cuBLAS, and opened with dlopen() by make_backend()
// (llm/cuda_loader.cpp) only when a caller asks for the CUDA backend and the driver reports a
// device, so a process that never does (an echo worker, a CPU textgen worker) maps no CUDA library
// at all.
//
// The module exports one C symbol, kCudaModuleFactory. It takes and returns the C++ types of
// llm/backend.h (Backend, LlamaWeights, BackendOptions) and lets C++ exceptions through: this is
// sound only because the module and the program that opens it are built by the same compiler, with
// the same flags, in one build of this project (the install puts both in one component set). The
// request carries an ABI number, the build's stamp and the sizes of the types it passes, and the
// module refuses (BackendUnavailable) a caller from another build rather than misreading it.
//
// Everything else in the module is local to it (llm/cuda/module.map): its copies of the llm,
// kernels and logging code never interpose on the program's. The program never closes the module:
// the backends it made run the module's code until the process ends.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>

#include "llm/backend.h"

namespace podworker::llm {

inline constexpr int kCudaModuleAbi = 1;
inline constexpr const char* kCudaModuleFactory = "podworker_cuda_create_backend";

// Sizes of what crosses the boundary, compared by the module: a cheap guard against a module from
// another build whose stamp happens to match.
struct CudaModuleLayout {
  std::size_t weights = sizeof(LlamaWeights);
  std::size_t config = sizeof(LlamaConfig);
  std::size_t options = sizeof(BackendOptions);
  std::size_t sample_spec = sizeof(SampleSpec);

  friend bool operator==(const CudaModuleLayout&, const CudaModuleLayout&) = default;
};

struct CudaModuleRequest {
  int abi = kCudaModuleAbi;      // first: readable whatever the rest of the layout is
  const char* build_stamp = "";  // PODWORKER_BUILD_STAMP of the caller
  CudaModuleLayout layout{};
  const std::shared_ptr<const LlamaWeights>* weights = nullptr;
  const BackendOptions* options = nullptr;
  // The caller's logging settings, applied to the module's own copy of podworker/log so the
  // backend's lines look like the rest of the process's (each line is one fwrite, so lines from
  // both never interleave).
  int log_level = 2;
  bool log_json = false;
};

// The factory's type: a Backend the caller owns (delete through the virtual destructor), never
// null; throws BackendUnavailable (no device, another build) or what the backend's constructor
// throws.
using CudaModuleFactory = Backend* (*)(const CudaModuleRequest* request);

}  // namespace podworker::llm

// Defined in llm/cuda/module.cpp; a program finds it with dlsym(kCudaModuleFactory), never by
// linking.
extern "C" podworker::llm::Backend* podworker_cuda_create_backend(
    const podworker::llm::CudaModuleRequest* request);
static_assert(
    std::is_same_v<decltype(&podworker_cuda_create_backend), podworker::llm::CudaModuleFactory>);

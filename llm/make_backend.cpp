// make_backend(): the choice of backend. Apart from backend.cpp so the CUDA module, which needs
// Backend's own definitions, does not pull in the CPU backends and the module loader with them.
#include <string>

#include "llm/backend.h"
#include "llm/cpu_backend.h"
#include "llm/cuda_loader.h"
#include "llm/reference_backend.h"
#include "podworker/cuda_probe.h"
#include "podworker/log.h"

namespace podworker::llm {

int cuda_device_count() {
  return probe_cuda_driver().devices;
}

bool cuda_backend_compiled() {
#ifdef PODWORKER_LLM_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(std::shared_ptr<const LlamaWeights> weights, BackendKind kind,
                                      const BackendOptions& options) {
  if (kind == BackendKind::reference) {
    log::info("llm: using the reference backend");
    return make_reference_backend(std::move(weights), options);
  }
  if (kind == BackendKind::cuda || kind == BackendKind::automatic) {
    // The driver is asked first, without the CUDA runtime: the module (and with it cudart and
    // cuBLAS) is opened only when there is a device to run on.
    const CudaDriverProbe probe = probe_cuda_driver();
    if (probe.devices > 0) {
      try {
        auto backend = make_cuda_backend_from_module(weights, options);
        log::info("llm: using the CUDA backend (" + std::to_string(probe.devices) + " device(s))");
        return backend;
      } catch (const BackendUnavailable& e) {
        if (kind == BackendKind::cuda) throw;
        log::warn(std::string("llm: the CUDA backend is unavailable (") + e.what() +
                  "); using the CPU backend");
      }
    } else if (kind == BackendKind::cuda) {
      throw BackendUnavailable("CUDA backend requested but no CUDA device is present (" +
                               probe.why_none + ")");
    } else {
      log::info("llm: no CUDA device (" + probe.why_none + "); using the CPU backend");
    }
  } else {
    log::info("llm: using the CPU backend");
  }
  return make_cpu_backend(std::move(weights), options);
}

}  // namespace podworker::llm

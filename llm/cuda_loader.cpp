#include "llm/cuda_loader.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <system_error>

#include "llm/cuda/module.h"
#include "podworker/log.h"

namespace podworker::llm {
namespace {

#ifdef PODWORKER_LLM_HAVE_CUDA
std::string last_dl_error() {
  const char* e = ::dlerror();
  return e != nullptr ? std::string(e) : std::string("unknown error");
}

// The opened module's factory. The handle is deliberately never closed (llm/cuda/module.h).
struct LoadedModule {
  CudaModuleFactory factory = nullptr;
  std::string path;
  std::string error;  // why there is no factory
};

LoadedModule open_module() {
  LoadedModule out;
  std::string looked;
  for (const auto& candidate : cuda_module_candidates()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(candidate, ec)) {
      looked += (looked.empty() ? "" : ", ") + candidate.string();
      continue;
    }
    // RTLD_LOCAL: the module's symbols serve only itself (it exports just the factory anyway).
    void* handle = ::dlopen(candidate.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
      out.error =
          "cannot load the CUDA backend module " + candidate.string() + ": " + last_dl_error();
      return out;
    }
    out.factory = reinterpret_cast<CudaModuleFactory>(::dlsym(handle, kCudaModuleFactory));
    if (out.factory == nullptr) {
      out.error =
          candidate.string() + " is not a CUDA backend module (no " + kCudaModuleFactory + ")";
      return out;
    }
    out.path = candidate.string();
    return out;
  }
  out.error = "the CUDA backend module (libpodworker_cuda.so) was not found; looked at " + looked +
              " (set PODWORKER_CUDA_MODULE to its path)";
  return out;
}
#endif

}  // namespace

std::vector<std::filesystem::path> cuda_module_candidates() {
  constexpr const char* kFile = "libpodworker_cuda.so";
  if (const char* explicit_path = std::getenv("PODWORKER_CUDA_MODULE");
      explicit_path != nullptr && *explicit_path != '\0') {
    return {std::filesystem::path(explicit_path)};
  }
  std::vector<std::filesystem::path> out;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    out.push_back(exe.parent_path() / kFile);
#ifdef PODWORKER_CUDA_MODULE_INSTALL_DIR
    out.push_back(
        (exe.parent_path() / PODWORKER_CUDA_MODULE_INSTALL_DIR / kFile).lexically_normal());
#endif
  }
#ifdef PODWORKER_CUDA_MODULE_BUILD_PATH
  out.emplace_back(PODWORKER_CUDA_MODULE_BUILD_PATH);
#endif
  return out;
}

std::unique_ptr<Backend> make_cuda_backend_from_module(std::shared_ptr<const LlamaWeights> weights,
                                                       const BackendOptions& options) {
#ifndef PODWORKER_LLM_HAVE_CUDA
  (void)weights;
  (void)options;
  throw BackendUnavailable(
      "this build has no CUDA backend (PODWORKER_CUDA=OFF or no CUDA compiler)");
#else
  if (!weights) throw std::invalid_argument("make_backend: no weights");
  // An opened module is kept for the process; a failure is not, so a module installed later (or a
  // corrected PODWORKER_CUDA_MODULE) is found by the next request.
  static std::mutex mutex;
  static CudaModuleFactory factory = nullptr;
  {
    std::lock_guard lock(mutex);
    if (factory == nullptr) {
      const LoadedModule m = open_module();
      if (m.factory == nullptr) throw BackendUnavailable(m.error);
      log::info("llm: opened the CUDA backend module " + m.path);
      factory = m.factory;
    }
  }
  CudaModuleRequest request;
  request.build_stamp = PODWORKER_BUILD_STAMP;
  request.weights = &weights;
  request.options = &options;
  request.log_level = static_cast<int>(log::level());
  request.log_json = log::json();
  return std::unique_ptr<Backend>(factory(&request));
#endif
}

}  // namespace podworker::llm

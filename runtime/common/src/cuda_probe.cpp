#include "podworker/cuda_probe.h"

#include <dlfcn.h>

#include <initializer_list>

namespace podworker {
namespace {

// A dlopen'ed library (the first of names that opens), closed on destruction.
class Library {
 public:
  explicit Library(std::initializer_list<const char*> names) {
    for (const char* name : names) {
      handle_ = ::dlopen(name, RTLD_NOW | RTLD_LOCAL);
      if (handle_ != nullptr) return;
    }
  }
  ~Library() {
    if (handle_ != nullptr) ::dlclose(handle_);
  }
  Library(const Library&) = delete;
  Library& operator=(const Library&) = delete;
  explicit operator bool() const noexcept { return handle_ != nullptr; }
  template <typename Fn>
  Fn* symbol(const char* name) const noexcept {
    return reinterpret_cast<Fn*>(::dlsym(handle_, name));
  }

 private:
  void* handle_ = nullptr;
};

}  // namespace

CudaDriverProbe probe_cuda_driver() {
  CudaDriverProbe out;
  // The driver API needs no CUDA toolkit at build time; the driver library is what the GPU
  // container runtime mounts, so its absence is the usual "no GPU here".
  const Library driver({"libcuda.so.1", "libcuda.so"});
  if (!driver) {
    out.why_none = "no CUDA driver library (libcuda.so.1)";
    return out;
  }
  using Init = int(unsigned);
  using IntOut = int(int*);
  auto* cu_init = driver.symbol<Init>("cuInit");
  auto* cu_count = driver.symbol<IntOut>("cuDeviceGetCount");
  auto* cu_version = driver.symbol<IntOut>("cuDriverGetVersion");
  if (cu_init == nullptr || cu_count == nullptr || cu_version == nullptr) {
    out.why_none = "the CUDA driver library lacks cuInit, cuDeviceGetCount or cuDriverGetVersion";
    return out;
  }
  if (const int rc = cu_init(0); rc != 0) {
    out.why_none = "cuInit failed (CUresult " + std::to_string(rc) + ")";
    return out;
  }
  cu_version(&out.driver_version);
  if (cu_count(&out.devices) != 0 || out.devices <= 0) {
    out.devices = 0;
    out.why_none = "the driver sees no device";
  }
  return out;
}

int cuda_runtime_version() {
  const Library runtime(
      {"libcudart.so", "libcudart.so.13", "libcudart.so.12", "libcudart.so.11.0"});
  int version = 0;
  if (runtime) {
    if (auto* rt_version = runtime.symbol<int(int*)>("cudaRuntimeGetVersion")) rt_version(&version);
  }
  return version;
}

}  // namespace podworker

// Device detection and the RAII handles of kernels/device.h (stream, event, cuBLAS handle, memory).
#include <cublas_v2.h>

#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/device.h"
#include "podworker/log.h"

namespace podworker::kernels::cuda {

using detail::check;
using detail::native;

bool compiled() noexcept { return true; }

namespace {

int detect_devices() noexcept {
  int driver = 0;
  int runtime = 0;
  // Both calls work without a driver (they report 0), so the log says what is missing.
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  const std::string versions = "driver " + std::to_string(driver / 1000) + "." + std::to_string(driver % 1000 / 10) +
                               ", runtime " + std::to_string(runtime / 1000) + "." +
                               std::to_string(runtime % 1000 / 10);
  if (status != cudaSuccess) {
    // No driver, a driver older than the runtime, the stub library, or no device: all mean "use the
    // CPU", not a failure. Clear the sticky error so later calls start clean.
    cudaGetLastError();
    log::info("CUDA: no usable device (" + std::string(cudaGetErrorName(status)) + ", " + versions + ")");
    return 0;
  }
  log::info("CUDA: " + std::to_string(count) + " device(s), " + versions);
  return count;
}

}  // namespace

int device_count() noexcept {
  static const int count = detect_devices();
  return count;
}

DeviceInfo device_info(int device) {
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  DeviceInfo info;
  info.index = device;
  info.name = prop.name;
  info.compute_major = prop.major;
  info.compute_minor = prop.minor;
  info.total_memory = prop.totalGlobalMem;
  info.sm_count = prop.multiProcessorCount;
  info.l2_bytes = static_cast<std::size_t>(prop.l2CacheSize);
  cudaDriverGetVersion(&info.driver_version);
  cudaRuntimeGetVersion(&info.runtime_version);
  return info;
}

void set_device(int device) { check(cudaSetDevice(device), "cudaSetDevice"); }
void device_synchronize() { check(cudaDeviceSynchronize(), "cudaDeviceSynchronize"); }

Stream::Stream() {
  cudaStream_t s = nullptr;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
  handle_ = s;
}
Stream::~Stream() {
  if (handle_ != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
}
Stream& Stream::operator=(Stream&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) cudaStreamDestroy(static_cast<cudaStream_t>(handle_));
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}
void Stream::synchronize() const { check(cudaStreamSynchronize(native(view())), "cudaStreamSynchronize"); }

Event::Event(bool timing) {
  cudaEvent_t e = nullptr;
  check(cudaEventCreateWithFlags(&e, timing ? cudaEventDefault : cudaEventDisableTiming), "cudaEventCreate");
  handle_ = e;
}
Event::~Event() {
  if (handle_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(handle_));
}
Event& Event::operator=(Event&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) cudaEventDestroy(static_cast<cudaEvent_t>(handle_));
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}
void Event::record(StreamView stream) {
  check(cudaEventRecord(static_cast<cudaEvent_t>(handle_), detail::native(stream)), "cudaEventRecord");
}
void Event::synchronize() const { check(cudaEventSynchronize(static_cast<cudaEvent_t>(handle_)), "cudaEventSynchronize"); }
bool Event::ready() const {
  const cudaError_t status = cudaEventQuery(static_cast<cudaEvent_t>(handle_));
  if (status == cudaErrorNotReady) return false;
  check(status, "cudaEventQuery");
  return true;
}
void Event::wait_on(StreamView stream) const {
  check(cudaStreamWaitEvent(detail::native(stream), static_cast<cudaEvent_t>(handle_), 0), "cudaStreamWaitEvent");
}
float elapsed_ms(const Event& start, const Event& stop) {
  float ms = 0.0f;
  check(cudaEventElapsedTime(&ms, static_cast<cudaEvent_t>(start.native()), static_cast<cudaEvent_t>(stop.native())),
        "cudaEventElapsedTime");
  return ms;
}

CublasHandle::CublasHandle() {
  cublasHandle_t h = nullptr;
  const cublasStatus_t status = cublasCreate(&h);
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw CudaError(std::string("cublasCreate: ") + cublasGetStatusName(status), static_cast<int>(status));
  }
  handle_ = h;
}
CublasHandle::~CublasHandle() {
  if (handle_ != nullptr) cublasDestroy(static_cast<cublasHandle_t>(handle_));
}
CublasHandle& CublasHandle::operator=(CublasHandle&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) cublasDestroy(static_cast<cublasHandle_t>(handle_));
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

void* device_alloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  check(cudaMalloc(&p, bytes), ("cudaMalloc of " + std::to_string(bytes) + " bytes").c_str());
  return p;
}
void device_free(void* ptr) noexcept {
  if (ptr == nullptr) return;
  const cudaError_t status = cudaFree(ptr);
  if (status != cudaSuccess) log::warn(std::string("cudaFree: ") + cudaGetErrorName(status));
}
void* pinned_alloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = nullptr;
  check(cudaMallocHost(&p, bytes), "cudaMallocHost");
  return p;
}
void pinned_free(void* ptr) noexcept {
  if (ptr == nullptr) return;
  const cudaError_t status = cudaFreeHost(ptr);
  if (status != cudaSuccess) log::warn(std::string("cudaFreeHost: ") + cudaGetErrorName(status));
}
void copy_to_device(void* dst, const void* src, std::size_t bytes, StreamView stream) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, native(stream)), "cudaMemcpyAsync H2D");
}
void copy_to_host(void* dst, const void* src, std::size_t bytes, StreamView stream) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, native(stream)), "cudaMemcpyAsync D2H");
}
void copy_device_to_device(void* dst, const void* src, std::size_t bytes, StreamView stream) {
  if (bytes == 0) return;
  check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, native(stream)), "cudaMemcpyAsync D2D");
}
void memset_device(void* dst, int value, std::size_t bytes, StreamView stream) {
  if (bytes == 0) return;
  check(cudaMemsetAsync(dst, value, bytes, native(stream)), "cudaMemsetAsync");
}

}  // namespace podworker::kernels::cuda

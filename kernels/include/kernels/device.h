// CUDA device handles as move-only RAII types, device detection, and the typed errors every CUDA entry
// point throws. Compiles without the CUDA toolkit: handles are opaque (`void*`), so code that only
// passes streams and buffers around never includes a CUDA header. When the project is built without
// CUDA these functions exist and throw NotCompiled (no_cuda.cpp); the op launchers of the other
// headers' cuda:: namespaces exist only in a CUDA build.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

namespace podworker::kernels::cuda {

// Thrown by every CUDA entry point when the library was built without CUDA.
class NotCompiled : public std::runtime_error {
 public:
  explicit NotCompiled(const std::string& what_function)
      : std::runtime_error(what_function + ": podworker was built without CUDA") {}
};

// A CUDA runtime or cuBLAS call failed; `code()` is the cudaError_t / cublasStatus_t value.
class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& message, int code) : std::runtime_error(message), code_(code) {}
  int code() const noexcept { return code_; }

 private:
  int code_;
};

// True when the library was built with CUDA (the functions below do real work).
bool compiled() noexcept;

// Number of usable CUDA devices. Returns 0 — not an error — when CUDA is not built, there is no
// driver, the driver is too old, only the stub library is present, or there is no device. The first
// call logs the driver and runtime versions (or why there is no device). Never throws.
int device_count() noexcept;

struct DeviceInfo {
  int index = 0;
  std::string name;
  int compute_major = 0;
  int compute_minor = 0;
  std::size_t total_memory = 0;
  int sm_count = 0;
  std::size_t l2_bytes = 0;
  int driver_version = 0;   // e.g. 13000 for 13.0
  int runtime_version = 0;
};
DeviceInfo device_info(int device = 0);
void set_device(int device);
void device_synchronize();

// A non-owning view of a cudaStream_t; the default view is the legacy default stream. Launchers take
// this so their declarations need no CUDA header.
struct StreamView {
  void* handle = nullptr;
};

class Stream {
 public:
  Stream();  // a non-blocking stream on the current device
  ~Stream();
  Stream(Stream&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Stream& operator=(Stream&& other) noexcept;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  StreamView view() const noexcept { return StreamView{handle_}; }
  operator StreamView() const noexcept { return view(); }  // NOLINT: views convert implicitly
  void synchronize() const;

 private:
  void* handle_ = nullptr;
};

class Event {
 public:
  // `timing` false makes a cheaper event that can only order work (cudaEventDisableTiming).
  explicit Event(bool timing = true);
  ~Event();
  Event(Event&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Event& operator=(Event&& other) noexcept;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  void record(StreamView stream);
  void synchronize() const;
  bool ready() const;
  // Makes `stream` wait for this event's last record.
  void wait_on(StreamView stream) const;
  void* native() const noexcept { return handle_; }

 private:
  void* handle_ = nullptr;
};
// Milliseconds between two recorded, completed timing events.
float elapsed_ms(const Event& start, const Event& stop);

class CublasHandle {
 public:
  CublasHandle();
  ~CublasHandle();
  CublasHandle(CublasHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  CublasHandle& operator=(CublasHandle&& other) noexcept;
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;

  void* native() const noexcept { return handle_; }  // a cublasHandle_t

 private:
  void* handle_ = nullptr;
};

// Raw memory primitives behind the buffers; all copies are asynchronous on `stream` except where
// named `_sync`. The free functions never throw (errors are logged).
void* device_alloc(std::size_t bytes);
void device_free(void* ptr) noexcept;
void* pinned_alloc(std::size_t bytes);
void pinned_free(void* ptr) noexcept;
void copy_to_device(void* dst, const void* src, std::size_t bytes, StreamView stream);
void copy_to_host(void* dst, const void* src, std::size_t bytes, StreamView stream);
void copy_device_to_device(void* dst, const void* src, std::size_t bytes, StreamView stream);
void memset_device(void* dst, int value, std::size_t bytes, StreamView stream);

template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count)
      : ptr_(static_cast<T*>(device_alloc(count * sizeof(T)))), count_(count) {}
  ~DeviceBuffer() { device_free(ptr_); }
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      device_free(ptr_);
      ptr_ = std::exchange(other.ptr_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  T* get() const noexcept { return ptr_; }
  std::size_t size() const noexcept { return count_; }
  std::size_t bytes() const noexcept { return count_ * sizeof(T); }
  bool empty() const noexcept { return count_ == 0; }

  // The stream is explicit: a copy on the legacy default stream does not order with work on a
  // non-blocking stream (kernels/device.h Stream), so every caller names the stream it means.
  void upload(std::span<const T> host, StreamView stream) {
    if (host.size() > count_) throw std::out_of_range("DeviceBuffer::upload: too many elements");
    copy_to_device(ptr_, host.data(), host.size_bytes(), stream);
  }
  void download(std::span<T> host, StreamView stream) const {
    if (host.size() > count_) throw std::out_of_range("DeviceBuffer::download: too many elements");
    copy_to_host(host.data(), ptr_, host.size_bytes(), stream);
  }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

// Page-locked host memory: needed for truly asynchronous copies (e.g. the sampled token ids).
template <class T>
class PinnedBuffer {
 public:
  PinnedBuffer() = default;
  explicit PinnedBuffer(std::size_t count)
      : ptr_(static_cast<T*>(pinned_alloc(count * sizeof(T)))), count_(count) {}
  ~PinnedBuffer() { pinned_free(ptr_); }
  PinnedBuffer(PinnedBuffer&& other) noexcept
      : ptr_(std::exchange(other.ptr_, nullptr)), count_(std::exchange(other.count_, 0)) {}
  PinnedBuffer& operator=(PinnedBuffer&& other) noexcept {
    if (this != &other) {
      pinned_free(ptr_);
      ptr_ = std::exchange(other.ptr_, nullptr);
      count_ = std::exchange(other.count_, 0);
    }
    return *this;
  }
  PinnedBuffer(const PinnedBuffer&) = delete;
  PinnedBuffer& operator=(const PinnedBuffer&) = delete;

  T* get() const noexcept { return ptr_; }
  T& operator[](std::size_t i) const noexcept { return ptr_[i]; }
  std::size_t size() const noexcept { return count_; }
  std::size_t bytes() const noexcept { return count_ * sizeof(T); }
  std::span<T> span() const noexcept { return {ptr_, count_}; }

 private:
  T* ptr_ = nullptr;
  std::size_t count_ = 0;
};

}  // namespace podworker::kernels::cuda

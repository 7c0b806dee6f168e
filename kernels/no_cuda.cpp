// The device API of kernels/device.h in a build without CUDA: device_count() reports zero devices
// (how callers choose the CPU), and the handles throw NotCompiled, so code that only holds streams
// and buffers links and fails with a typed error if it ever runs. The ops themselves have no
// stand-ins: a CUDA op launcher exists only where CUDA is built, and only code built for CUDA calls
// one (an op asked of a backend that is not built is BackendUnavailable, llm/backend.h).
#include "kernels/device.h"
#include "podworker/log.h"

namespace podworker::kernels::cuda {

bool compiled() noexcept { return false; }

int device_count() noexcept {
  static const bool logged = [] {
    log::info("CUDA: not compiled into this build; using the CPU");
    return true;
  }();
  (void)logged;
  return 0;
}

DeviceInfo device_info(int) { throw NotCompiled("device_info"); }
void set_device(int) { throw NotCompiled("set_device"); }
void device_synchronize() { throw NotCompiled("device_synchronize"); }

Stream::Stream() { throw NotCompiled("Stream"); }
Stream::~Stream() = default;
Stream& Stream::operator=(Stream&& other) noexcept {
  handle_ = std::exchange(other.handle_, nullptr);
  return *this;
}
void Stream::synchronize() const { throw NotCompiled("Stream::synchronize"); }

Event::Event(bool) { throw NotCompiled("Event"); }
Event::~Event() = default;
Event& Event::operator=(Event&& other) noexcept {
  handle_ = std::exchange(other.handle_, nullptr);
  return *this;
}
void Event::record(StreamView) { throw NotCompiled("Event::record"); }
void Event::synchronize() const { throw NotCompiled("Event::synchronize"); }
bool Event::ready() const { throw NotCompiled("Event::ready"); }
void Event::wait_on(StreamView) const { throw NotCompiled("Event::wait_on"); }
float elapsed_ms(const Event&, const Event&) { throw NotCompiled("elapsed_ms"); }

CublasHandle::CublasHandle() { throw NotCompiled("CublasHandle"); }
CublasHandle::~CublasHandle() = default;
CublasHandle& CublasHandle::operator=(CublasHandle&& other) noexcept {
  handle_ = std::exchange(other.handle_, nullptr);
  return *this;
}

void* device_alloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  throw NotCompiled("device_alloc");
}
void device_free(void*) noexcept {}
void* pinned_alloc(std::size_t bytes) {
  if (bytes == 0) return nullptr;
  throw NotCompiled("pinned_alloc");
}
void pinned_free(void*) noexcept {}
void copy_to_device(void*, const void*, std::size_t, StreamView) { throw NotCompiled("copy_to_device"); }
void copy_to_host(void*, const void*, std::size_t, StreamView) { throw NotCompiled("copy_to_host"); }
void copy_device_to_device(void*, const void*, std::size_t, StreamView) {
  throw NotCompiled("copy_device_to_device");
}
void memset_device(void*, int, std::size_t, StreamView) { throw NotCompiled("memset_device"); }

}  // namespace podworker::kernels::cuda

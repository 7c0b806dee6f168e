// Built instead of the CUDA sources when podworker is configured without CUDA: every CUDA entry point
// exists with the same signature and throws NotCompiled, so callers link and the error is typed.
// device_count() reports zero devices, which is how callers are expected to choose the CPU path.
#include "kernels/add.h"
#include "kernels/attention.h"
#include "kernels/dequantize.h"
#include "kernels/device.h"
#include "kernels/gemm.h"
#include "kernels/get_rows.h"
#include "kernels/matvec.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"
#include "kernels/softmax.h"
#include "kernels/swiglu.h"
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

void dequantize(GgmlType, const void*, float*, std::int64_t, StreamView) { throw NotCompiled("dequantize"); }
void dequantize_to_f16(GgmlType, const void*, half_bits*, std::int64_t, StreamView) {
  throw NotCompiled("dequantize_to_f16");
}
void dequantize_to_bf16(GgmlType, const void*, bf16_bits*, std::int64_t, StreamView) {
  throw NotCompiled("dequantize_to_bf16");
}
void convert_to_f16(const float*, half_bits*, std::int64_t, StreamView) { throw NotCompiled("convert_to_f16"); }
void convert_to_bf16(const float*, bf16_bits*, std::int64_t, StreamView) { throw NotCompiled("convert_to_bf16"); }

void matvec(GgmlType, const void*, std::int64_t, std::int64_t, const float*, float*, int, bool, StreamView) {
  throw NotCompiled("matvec");
}
void matvec(GgmlType, const void*, std::int64_t, std::int64_t, const half_bits*, float*, int, bool, StreamView) {
  throw NotCompiled("matvec");
}

std::size_t gemm_scratch_bytes(std::int64_t, std::int64_t, std::int64_t) { throw NotCompiled("gemm_scratch_bytes"); }
void gemm(CublasHandle&, GgmlType, const void*, std::int64_t, std::int64_t, const void*, std::int64_t, float*, float,
          StreamView) {
  throw NotCompiled("gemm");
}
void gemm(CublasHandle&, GgmlType, const void*, std::int64_t, std::int64_t, const float*, std::int64_t, float*, float,
          void*, std::size_t, StreamView) {
  throw NotCompiled("gemm");
}

void rmsnorm(const float*, const float*, float*, std::int64_t, std::int64_t, float, StreamView) {
  throw NotCompiled("rmsnorm");
}
void rope(float*, std::int64_t, int, int, std::int64_t, const int*, float, StreamView) { throw NotCompiled("rope"); }
void swiglu(const float*, const float*, float*, std::int64_t, StreamView) { throw NotCompiled("swiglu"); }
void add(const float*, const float*, float*, std::int64_t, StreamView) { throw NotCompiled("add"); }
void softmax(float*, std::int64_t, std::int64_t, StreamView) { throw NotCompiled("softmax"); }

void kv_store(const float*, const float*, std::int64_t, std::int64_t, float*, float*, const AttentionShape&,
              const int*, const int*, StreamView) {
  throw NotCompiled("kv_store");
}
void attention_decode(const float*, std::int64_t, const float*, const float*, float*, int, const AttentionShape&,
                      const int*, const int*, float, StreamView) {
  throw NotCompiled("attention_decode");
}
void attention_prefill(const float*, std::int64_t, const float*, const float*, float*, std::int64_t,
                       const AttentionShape&, int, int, float, StreamView) {
  throw NotCompiled("attention_prefill");
}

void get_rows(GgmlType, const void*, std::int64_t, std::int64_t, const int*, std::int64_t, float*, StreamView) {
  throw NotCompiled("get_rows");
}

void sample(const float*, int, int, const SampleParams*, const int*, int*, StreamView) { throw NotCompiled("sample"); }
void argmax(const float*, int, int, int*, StreamView) { throw NotCompiled("argmax"); }

}  // namespace podworker::kernels::cuda

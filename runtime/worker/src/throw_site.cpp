// Records the stack where each C++ exception is thrown, so a handler's error report can point at
// the line that threw instead of the runtime frame that caught it.
//
// The hook replaces __cxa_throw, the entry point every `throw` expression compiles to: this
// definition, linked into the executable, is found before libstdc++'s, captures the raw frames
// (addresses only: names are looked up later, and only for a report) and hands over to the real
// one. Rethrows (`throw;`) go through __cxa_rethrow and keep the original record.
#include "throw_site.h"

#include <cxxabi.h>
#include <dlfcn.h>

#include <array>
#include <cstddef>
#include <typeinfo>

namespace podworker::worker {
namespace {

// The last throws of this thread. A handler catching and throwing anew while unwinding can throw
// a few times before the runtime catches; eight is plenty to still find the one it catches.
struct Record {
  const void* object = nullptr;
  boost::stacktrace::stacktrace trace{0, 0};
};
constexpr std::size_t kRecords = 8;
thread_local std::array<Record, kRecords> t_records;
thread_local std::size_t t_next = 0;
thread_local bool t_recording = false;  // a throw while capturing (out of memory) is not recorded

using CxaThrow = void (*)(void*, std::type_info*, void (*)(void*));

CxaThrow real_cxa_throw() {
  static const CxaThrow real = reinterpret_cast<CxaThrow>(::dlsym(RTLD_NEXT, "__cxa_throw"));
  return real;
}

void record(const void* object) noexcept {
  if (t_recording) return;
  t_recording = true;
  try {
    Record& r = t_records[t_next++ % kRecords];
    r.object = object;
    // All frames: how many belong to the hook depends on inlining, so the report drops them by
    // name (up to __cxa_throw) when it prints.
    r.trace = boost::stacktrace::stacktrace(0, 128);
  } catch (...) {
    // No memory for the frames: the report falls back to the catch site.
  }
  t_recording = false;
}

}  // namespace

std::optional<boost::stacktrace::stacktrace> throw_site(const void* object) {
  for (std::size_t i = 0; i < kRecords; ++i) {
    const Record& r = t_records[(t_next + kRecords - 1 - i) % kRecords];
    if (r.object != nullptr && r.object == object) return r.trace;
  }
  return std::nullopt;
}

}  // namespace podworker::worker

// Defined where libstdc++ declares it (cxxabi.h), with its exact signature.
namespace __cxxabiv1 {
extern "C" void __cxa_throw(void* object, std::type_info* type,
                            void(_GLIBCXX_CDTOR_CALLABI* destructor)(void*)) {
  podworker::worker::record(object);
  podworker::worker::real_cxa_throw()(object, type, destructor);
  __builtin_unreachable();
}
}  // namespace __cxxabiv1

#pragma once
// Wall-clock bounds in the acceptance tests ("a job submitted after a worker left completes within
// 1 s") hold as stated in the normal build. Under AddressSanitizer or ThreadSanitizer every process
// of such a test (endpoint, worker, client) runs several times slower on a loaded 2-core machine,
// and a bound met by a wide margin normally can be missed there without any fault: those builds
// stretch each bound by PODWORKER_TEST_SLOWDOWN (set by CMake), so they still catch a job that
// waits for a grace period or a long poll (tens of seconds) but not a slow scheduler.
#include <chrono>

#ifndef PODWORKER_TEST_SLOWDOWN
#define PODWORKER_TEST_SLOWDOWN 1
#endif

namespace podworker::testing {

inline constexpr int kSlowdown = PODWORKER_TEST_SLOWDOWN;

// `bound` as the test states it, times the build's slowdown.
template <class Rep, class Period>
constexpr std::chrono::duration<Rep, Period> time_budget(std::chrono::duration<Rep, Period> bound) {
  return bound * kSlowdown;
}

}  // namespace podworker::testing

// test_ops: every op of the forward pass on every backend built, against the reference
// (kernels/cpu), in the spirit of llama.cpp's test-backend-ops. Each case prints one line; any
// failure fails the run.
//
// Usage: test_ops [--backend cpu|cuda|all] [--perf] [--filter TEXT]
//   --backend  cpu: the fast CPU backend's ops (every instruction set this CPU runs); cuda: the
//   CUDA
//              backend's; all (default): both where available.
//   --perf     also times each op: microseconds per call, GB/s of the bytes it moves, and that as a
//              percentage of the measured copy bandwidth (host memcpy, or device-to-device copy).
//   --filter   only cases whose "op shape" contains TEXT.
// Exit status: 0 passed, 1 a case failed, PODWORKER_SKIP_RETURN_CODE when --backend cuda names a
// backend that is not built or has no device (CTest reports that as Skipped).
#include <cstdio>
#include <cstring>
#include <string>

#include "kernels/device.h"
#include "op_harness.h"

int main(int argc, char** argv) {
  namespace t = podworker::ops_test;
  std::string backend = "all", filter;
  bool perf = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--perf") {
      perf = true;
    } else if ((a == "--backend" || a == "--filter") && i + 1 < argc) {
      (a == "--backend" ? backend : filter) = argv[++i];
    } else {
      std::fprintf(stderr, "usage: test_ops [--backend cpu|cuda|all] [--perf] [--filter TEXT]\n");
      return 2;
    }
  }
  if (backend != "cpu" && backend != "cuda" && backend != "all") {
    std::fprintf(stderr, "test_ops: unknown backend %s\n", backend.c_str());
    return 2;
  }
  int failures = 0, passed = 0;
  if (backend == "cpu" || backend == "all") {
    const double bw = perf ? t::host_bandwidth_gbs() : 0;
    if (perf) std::printf("host copy bandwidth %.1f GB/s\n", bw);
    t::Runner r("cpu", perf, bw, filter);
    t::run_cpu_cases(r);
    failures += r.failures();
    passed += r.passed();
  }
  if (backend == "cuda" || backend == "all") {
    namespace kc = podworker::kernels::cuda;
    const bool built = PODWORKER_TEST_OPS_CUDA != 0;
    if (!built || kc::device_count() == 0) {
      std::printf("cuda: skipped (%s)\n",
                  built ? "no CUDA device" : "this build has no CUDA backend");
      if (backend == "cuda") return PODWORKER_SKIP_RETURN_CODE;
    } else {
      const double bw = perf ? t::cuda_bandwidth_gbs() : 0;
      if (perf) std::printf("device copy bandwidth %.1f GB/s\n", bw);
      t::Runner r("cuda", perf, bw, filter);
      t::run_cuda_cases(r);
      t::run_cuda_kernel_cases(r);
      failures += r.failures();
      passed += r.passed();
    }
  }
  std::printf("test_ops: %d passed, %d failed\n", passed, failures);
  return failures == 0 && passed > 0 ? 0 : 1;
}

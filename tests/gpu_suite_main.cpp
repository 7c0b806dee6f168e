// The main() of a test executable with a `gpu` doctest suite (podworker_add_doctest(... GPU ...)).
// CTest runs such an executable twice: the portable cases, and the `gpu` suite. Without a CUDA
// device, or in a build without CUDA, the gpu run has nothing to check; it exits with
// PODWORKER_SKIP_RETURN_CODE, the CTest entry's SKIP_RETURN_CODE, so the run reads "Skipped" and
// "Passed" always means the GPU cases ran.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <string_view>

#include "kernels/device.h"

namespace {

// Whether the command line selects the gpu suite, in any of doctest's spellings.
bool selects_gpu_suite(int argc, char** argv) {
  constexpr std::array<std::string_view, 4> kFlags{"--test-suite=", "-ts=", "--dt-test-suite=", "--dt-ts="};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg(argv[i]);
    for (const std::string_view flag : kFlags) {
      if (arg.starts_with(flag) && arg.substr(flag.size()) == "gpu") return true;
    }
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  namespace cuda = podworker::kernels::cuda;
  if (selects_gpu_suite(argc, argv) && cuda::device_count() == 0) {
    std::printf("gpu suite skipped: %s\n",
                cuda::compiled() ? "no CUDA device" : "this build has no CUDA (PODWORKER_CUDA=OFF)");
    return PODWORKER_SKIP_RETURN_CODE;
  }
  doctest::Context context(argc, argv);
  return context.run();
}

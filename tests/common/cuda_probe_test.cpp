#include <doctest/doctest.h>

#include "podworker/cuda_probe.h"

using namespace podworker;

TEST_CASE("cuda probe: devices with the driver's CUDA version, or none and the reason") {
  const CudaDriverProbe p = probe_cuda_driver();
  if (p.devices > 0) {
    MESSAGE(p.devices, " device(s), driver CUDA ", p.driver_version, ", runtime ",
            cuda_runtime_version());
    CHECK(p.why_none.empty());
    CHECK(p.driver_version >= 1000);  // 1000*major + 10*minor
  } else {
    MESSAGE("no GPU: ", p.why_none);
    CHECK(p.devices == 0);
    CHECK_FALSE(p.why_none.empty());
  }
  // The driver library is closed after each question; asking again gives the same answer.
  const CudaDriverProbe again = probe_cuda_driver();
  CHECK(again.devices == p.devices);
  CHECK(again.driver_version == p.driver_version);
  CHECK(again.why_none == p.why_none);
}

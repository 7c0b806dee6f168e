// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC 2011): a
// counter-based generator, so any thread on any device computes the n-th number of a stream from
// (key, counter) alone, with no state to carry between steps. Host and device share this one
// definition; the known-answer vectors of the Random123 library pin it in tests/kernels.
#pragma once

#include <array>
#include <cstdint>

#if defined(__CUDACC__)
#define PODWORKER_HOST_DEVICE __host__ __device__
#else
#define PODWORKER_HOST_DEVICE
#endif

namespace podworker::kernels {

struct Philox4x32 {
  std::uint32_t v[4];
};

// Ten rounds of Philox4x32 over `ctr` under `key` (the Random123 "philox4x32_10" function).
PODWORKER_HOST_DEVICE constexpr Philox4x32 philox4x32_10(Philox4x32 ctr, std::uint32_t key0,
                                                         std::uint32_t key1) {
  constexpr std::uint32_t kM0 = 0xD2511F53u, kM1 = 0xCD9E8D57u;
  constexpr std::uint32_t kW0 = 0x9E3779B9u, kW1 = 0xBB67AE85u;
  for (int round = 0; round < 10; ++round) {
    const std::uint64_t p0 = static_cast<std::uint64_t>(kM0) * ctr.v[0];
    const std::uint64_t p1 = static_cast<std::uint64_t>(kM1) * ctr.v[2];
    const auto hi0 = static_cast<std::uint32_t>(p0 >> 32), lo0 = static_cast<std::uint32_t>(p0);
    const auto hi1 = static_cast<std::uint32_t>(p1 >> 32), lo1 = static_cast<std::uint32_t>(p1);
    ctr = Philox4x32{{hi1 ^ ctr.v[1] ^ key0, lo1, hi0 ^ ctr.v[3] ^ key1, lo0}};
    key0 += kW0;
    key1 += kW1;
  }
  return ctr;
}

// 64 random bits for (seed, counter): counter in words 0-1, seed as the key, first two output
// words.
PODWORKER_HOST_DEVICE constexpr std::uint64_t philox_u64(std::uint64_t seed,
                                                         std::uint64_t counter) {
  const Philox4x32 out =
      philox4x32_10(Philox4x32{{static_cast<std::uint32_t>(counter),
                                static_cast<std::uint32_t>(counter >> 32), 0u, 0u}},
                    static_cast<std::uint32_t>(seed), static_cast<std::uint32_t>(seed >> 32));
  return static_cast<std::uint64_t>(out.v[1]) << 32 | out.v[0];
}

}  // namespace podworker::kernels

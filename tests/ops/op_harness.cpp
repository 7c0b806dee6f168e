#include "op_harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>

namespace podworker::ops_test {

double nmse(const std::vector<float>& got, const std::vector<float>& want) {
  if (got.size() != want.size()) return INFINITY;
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    num += d * d;
    den += static_cast<double>(want[i]) * want[i];
  }
  if (std::isnan(num)) return INFINITY;
  return num == 0 ? 0 : num / std::max(den, 1e-30);
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

void Runner::run(const Case& c) {
  const std::string label = c.op + " " + c.shape;
  if (!filter_.empty() && label.find(filter_) == std::string::npos) return;
  const std::vector<float> want = c.reference();
  c.launch();
  const std::vector<float> got = c.result();
  const double err = nmse(got, want);
  const bool ok = err <= c.nmse_tolerance;
  (ok ? passed_ : failures_) += 1;
  std::printf("%-5s %-5s %-12s %-16s %-24s %-5s %5d  nmse %9.2e <= %7.1e", ok ? "ok" : "FAIL",
              backend_.c_str(), c.impl.c_str(), c.op.c_str(), c.shape.c_str(), c.type.c_str(),
              c.batch, err, c.nmse_tolerance);
  if (perf_) {
    // Repeat for at least 0.2 s; the mean of the runs after one warm-up.
    using Clock = std::chrono::steady_clock;
    c.launch();
    c.synchronize();
    int n = 0;
    const auto t0 = Clock::now();
    double s = 0;
    do {
      c.launch();
      ++n;
      if (n % 8 == 0 || n < 8) {
        c.synchronize();
        s = std::chrono::duration<double>(Clock::now() - t0).count();
      }
    } while (s < 0.2);
    c.synchronize();
    s = std::chrono::duration<double>(Clock::now() - t0).count();
    const double us = s / n * 1e6;
    const double gbs = c.bytes / (us * 1e3);
    std::printf("  %10.1f us %8.1f GB/s %6.1f %%", us, gbs,
                bandwidth_ > 0 ? 100.0 * gbs / bandwidth_ : 0.0);
  }
  std::printf("\n");
}

double host_bandwidth_gbs() {
  // A copy well beyond the last-level cache: read + write bytes over the time.
  const std::size_t bytes = std::size_t{256} << 20;
  std::vector<char> a(bytes, 1), b(bytes, 0);
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(b.data(), a.data(), bytes);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    best = std::max(best, 2.0 * static_cast<double>(bytes) / s / 1e9);
    a[static_cast<std::size_t>(i)] = b[bytes - 1];
  }
  return best;
}

}  // namespace podworker::ops_test

// The test_ops harness: a case is one op on one shape, weight type and batch, run by one backend
// and compared with the op's reference (kernels/cpu) under the tolerance the case states.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace podworker::ops_test {

// Representative model shapes: the one we ship and a larger one (Llama-3-8B's).
struct ModelShape {
  const char* name;
  int n_embd, n_ff, n_head, n_head_kv, head_dim, n_vocab;
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
};
inline constexpr ModelShape kShapes[] = {
    {"smollm2-135m", 576, 1536, 9, 3, 64, 49152},
    {"llama3-8b", 4096, 14336, 32, 8, 128, 128256},
};

struct Case {
  std::string op;     // the op's name, as in docs/kernels.md
  std::string impl;   // the implementation within the backend (instruction set, kernel variant)
  std::string shape;  // e.g. "smollm2-135m wq"
  std::string type;   // weight type, or "-"
  int batch = 1;
  // Normalized mean squared error sum (got - want)^2 / sum want^2 allowed for this op and
  // precision.
  double nmse_tolerance = 0;
  double bytes = 0;  // memory the fast op reads and writes (for --perf)
  std::function<std::vector<float>()> reference;
  std::function<void()> launch;                // the backend's op on prepared inputs
  std::function<std::vector<float>()> result;  // its output, after launch (synchronised)
  std::function<void()> synchronize = [] {};   // waits for launched work (device backends)
};

class Runner {
 public:
  Runner(std::string backend, bool perf, double bandwidth_gbs, std::string filter)
      : backend_(std::move(backend)),
        perf_(perf),
        bandwidth_(bandwidth_gbs),
        filter_(std::move(filter)) {}
  // Checks the case (and times it with --perf); prints one line.
  void run(const Case& c);
  int failures() const { return failures_; }
  int passed() const { return passed_; }

 private:
  std::string backend_;
  bool perf_;
  double bandwidth_;
  std::string filter_;
  int failures_ = 0;
  int passed_ = 0;
};

double nmse(const std::vector<float>& got, const std::vector<float>& want);
std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f,
                                 float hi = 1.0f);

// The cases of each backend; they call runner.run() for each.
void run_cpu_cases(Runner& runner);
void run_cuda_cases(Runner& runner);
// The CUDA kernels the backend does not run as ops of its own (cuda_kernel_ops.cpp).
void run_cuda_kernel_cases(Runner& runner);
// Host memory bandwidth (a large memcpy), GB/s; and the device's (a device-to-device copy).
double host_bandwidth_gbs();
double cuda_bandwidth_gbs();

}  // namespace podworker::ops_test

// Fitness checks at worker start, as runpod-python (1.9+) runs them: free memory and disk above a
// threshold, a visible GPU with a new enough CUDA driver and runtime, then the handler's own checks
// (podworker/fitness.h). The first failure stops the start: the worker reports it on its ping
// (status=unhealthy) and exits non-zero, so the platform replaces the machine before a job lands on
// it. Thresholds and switches are the SDK's environment variables, with its defaults.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "podworker/fitness.h"
#include "podworker/worker.h"

namespace podworker::worker {

struct FitnessConfig {
  double min_memory_gb = 4.0;      // RUNPOD_MIN_MEMORY_GB: available memory, GiB
  double min_disk_percent = 10.0;  // RUNPOD_MIN_DISK_PERCENT: free share of each disk checked
  std::string min_cuda_version = "11.8";  // RUNPOD_MIN_CUDA_VERSION: "MAJOR.MINOR"
  bool skip_gpu = false;                  // RUNPOD_SKIP_GPU_CHECK
  bool skip_system = false;  // RUNPOD_SKIP_AUTO_SYSTEM_CHECKS: the handler's checks still run
  std::vector<std::filesystem::path> disk_paths{"/", "/tmp"};

  // Throws std::invalid_argument naming the variable when one is malformed.
  static FitnessConfig from_env();
};

struct FitnessFailure {
  std::string check;  // "memory", "disk", "gpu", or the name a handler registered
  std::string reason;
  std::string message() const { return "fitness check \"" + check + "\" failed: " + reason; }
};

// What the GPU probe found (the CUDA driver library is loaded at run time: a CPU-only build and a
// machine without a driver both work, and say why there is no GPU).
struct GpuProbe {
  int devices = 0;
  int driver_version =
      0;  // cuDriverGetVersion: the newest CUDA the driver supports, 1000*major + 10*minor
  int runtime_version = 0;  // cudaRuntimeGetVersion of the libcudart found, 0 when none
  std::string why_none;     // when devices == 0
};
GpuProbe probe_gpu();

// "12.4" → 12040 (CUDA's encoding). Throws std::invalid_argument on anything else.
int parse_cuda_version(const std::string& text);

// Runs the system checks (unless skipped) and then `checks`' registered ones, in order; the first
// failure is returned. Each check that passes is logged at INFO.
std::optional<FitnessFailure> run_fitness_checks(const FitnessConfig& config,
                                                 const fitness::Registry& checks);

// Logs the failure, pings the endpoint once with status=unhealthy and the reason (when there is a
// ping URL), and returns the worker's exit status for it.
int report_unfit(const WorkerOptions& options, const FitnessFailure& failure);

}  // namespace podworker::worker

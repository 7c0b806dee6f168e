#include "fitness_checks.h"

#include <sys/statvfs.h>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "http_client.h"
#include "podworker/cuda_probe.h"
#include "podworker/ids.h"
#include "podworker/log.h"

namespace podworker::worker {
namespace {

constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

// The SDK compares the lower-cased value with "true"; 1 and yes are accepted as well.
bool env_flag(const char* name) {
  std::string v = env(name);
  for (char& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return v == "true" || v == "1" || v == "yes";
}

double env_number(const char* name, double fallback) {
  const std::string v = env(name);
  if (v.empty()) return fallback;
  double value = 0;
  const auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), value);
  if (ec != std::errc() || ptr != v.data() + v.size() || value < 0) {
    throw std::invalid_argument(std::string(name) + " must be a non-negative number, got \"" + v +
                                "\"");
  }
  return value;
}

std::string fixed(double value, int decimals = 2) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(decimals);
  out << value;
  return out.str();
}

std::string cuda_version_text(int v) {
  return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
}

// Available memory: the kernel's MemAvailable, or what the container's cgroup (v2) still allows
// when that is less, since a container sees the host's /proc/meminfo.
double available_memory_bytes() {
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double available = -1;
  for (long long kb = 0; meminfo >> key >> kb; meminfo.ignore(64, '\n')) {
    if (key == "MemAvailable:") {
      available = static_cast<double>(kb) * 1024.0;
      break;
    }
  }
  if (available < 0) throw std::runtime_error("cannot read MemAvailable from /proc/meminfo");
  std::ifstream max_file("/sys/fs/cgroup/memory.max"),
      current_file("/sys/fs/cgroup/memory.current");
  std::string max_text;
  double current = 0;
  if (max_file >> max_text && max_text != "max" && current_file >> current) {
    const double limit = std::strtod(max_text.c_str(), nullptr);
    if (limit > 0) available = std::min(available, std::max(0.0, limit - current));
  }
  return available;
}

std::optional<std::string> check_memory(const FitnessConfig& c) {
  const double gb = available_memory_bytes() / kGiB;
  if (gb < c.min_memory_gb) {
    return "insufficient memory: " + fixed(gb) +
           " GB available, RUNPOD_MIN_MEMORY_GB=" + fixed(c.min_memory_gb) + " required";
  }
  log::info("fitness: memory ok, " + fixed(gb) + " GB available");
  return std::nullopt;
}

std::optional<std::string> check_disk(const FitnessConfig& c) {
  for (const auto& path : c.disk_paths) {
    struct statvfs st {};
    if (::statvfs(path.c_str(), &st) != 0) {
      if (path == "/") return "cannot stat the root file system";
      continue;  // as the SDK does: a missing /tmp is not a failure
    }
    const double total = static_cast<double>(st.f_blocks) * static_cast<double>(st.f_frsize);
    const double free = static_cast<double>(st.f_bavail) * static_cast<double>(st.f_frsize);
    const double percent = total > 0 ? 100.0 * free / total : 0.0;
    if (percent < c.min_disk_percent) {
      return "insufficient disk space on " + path.string() + ": " + fixed(percent, 1) +
             " % free (" + fixed(free / kGiB) +
             " GB), RUNPOD_MIN_DISK_PERCENT=" + fixed(c.min_disk_percent, 1) + " required";
    }
    log::info("fitness: disk " + path.string() + " ok, " + fixed(percent, 1) + " % free");
  }
  return std::nullopt;
}

std::optional<std::string> check_gpu(const FitnessConfig& c, bool required) {
  const GpuProbe gpu = probe_gpu();
  if (gpu.devices == 0) {
    if (required) return "the handler needs CUDA but no GPU is visible: " + gpu.why_none;
    log::info("fitness: no GPU (" + gpu.why_none + "); GPU checks skipped");
    return std::nullopt;
  }
  const int min = parse_cuda_version(c.min_cuda_version);
  if (gpu.driver_version < min) {
    return "CUDA driver supports CUDA " + cuda_version_text(gpu.driver_version) +
           ", RUNPOD_MIN_CUDA_VERSION=" + c.min_cuda_version + " required";
  }
  if (gpu.runtime_version > gpu.driver_version) {
    return "CUDA runtime " + cuda_version_text(gpu.runtime_version) +
           " needs a newer driver (the driver supports CUDA " +
           cuda_version_text(gpu.driver_version) + ")";
  }
  log::info("fitness: " + std::to_string(gpu.devices) + " GPU(s), driver CUDA " +
            cuda_version_text(gpu.driver_version) +
            (gpu.runtime_version > 0 ? ", runtime " + cuda_version_text(gpu.runtime_version) : ""));
  return std::nullopt;
}

}  // namespace

FitnessConfig FitnessConfig::from_env() {
  FitnessConfig c;
  c.min_memory_gb = env_number("RUNPOD_MIN_MEMORY_GB", c.min_memory_gb);
  c.min_disk_percent = env_number("RUNPOD_MIN_DISK_PERCENT", c.min_disk_percent);
  if (const std::string v = env("RUNPOD_MIN_CUDA_VERSION"); !v.empty()) {
    try {
      parse_cuda_version(v);
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("RUNPOD_MIN_CUDA_VERSION must be MAJOR.MINOR, got \"" + v + "\"");
    }
    c.min_cuda_version = v;
  }
  c.skip_gpu = env_flag("RUNPOD_SKIP_GPU_CHECK");
  c.skip_system = env_flag("RUNPOD_SKIP_AUTO_SYSTEM_CHECKS");
  return c;
}

int parse_cuda_version(const std::string& text) {
  int major = 0, minor = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, major);
  if (ec == std::errc() && p != end && *p == '.') {
    auto [q, ec2] = std::from_chars(p + 1, end, minor);
    if (ec2 == std::errc() && q == end && minor < 100) return major * 1000 + minor * 10;
  } else if (ec == std::errc() && p == end) {
    return major * 1000;
  }
  throw std::invalid_argument("not a CUDA version: \"" + text + "\"");
}

GpuProbe probe_gpu() {
  const CudaDriverProbe driver = probe_cuda_driver();
  GpuProbe out;
  out.devices = driver.devices;
  out.driver_version = driver.driver_version;
  out.why_none = driver.why_none;
  if (out.devices > 0) out.runtime_version = cuda_runtime_version();
  return out;
}

std::optional<FitnessFailure> run_fitness_checks(const FitnessConfig& config,
                                                 const fitness::Registry& checks) {
  // A check that cannot even measure (an unreadable /proc) fails the start too: a machine we
  // cannot inspect is not one to trust with jobs.
  auto run = [](const std::string& name, auto&& fn) -> std::optional<FitnessFailure> {
    try {
      if (auto reason = fn()) return FitnessFailure{name, *reason};
    } catch (const std::exception& e) {
      return FitnessFailure{name, e.what()};
    } catch (...) {
      return FitnessFailure{name, "threw a non-standard exception"};
    }
    return std::nullopt;
  };
  if (config.skip_system) {
    log::info("fitness: system checks skipped (RUNPOD_SKIP_AUTO_SYSTEM_CHECKS)");
  } else {
    if (auto f = run("memory", [&] { return check_memory(config); })) return f;
    if (auto f = run("disk", [&] { return check_disk(config); })) return f;
    if (config.skip_gpu) {
      log::info("fitness: GPU checks skipped (RUNPOD_SKIP_GPU_CHECK)");
    } else if (auto f = run("gpu", [&] { return check_gpu(config, checks.requires_cuda()); })) {
      return f;
    }
  }
  for (const auto& [name, check] : checks.checks()) {
    auto f = run(name, [&]() -> std::optional<std::string> {
      check();
      return std::nullopt;
    });
    if (f) return f;
    log::info("fitness: \"" + name + "\" ok");
  }
  return std::nullopt;
}

int report_unfit(const WorkerOptions& options, const FitnessFailure& failure) {
  log::error("worker unfit to take jobs: " + failure.message());
  if (!options.ping_url.empty()) {
    const std::string id = options.worker_id.empty() ? make_uuid() : options.worker_id;
    std::string url = substitute_url(options.ping_url, id, id);
    url = append_query(url, "status=unhealthy");
    url = append_query(url, "error=" + url_escape(failure.message()));
    url = append_query(url, std::string("runpod_version=") + kRunpodProtocolVersion);
    HttpClient client(options.api_key, options.connect_timeout);
    const HttpResponse r = client.get(url, options.request_timeout);
    if (r.status < 200 || r.status >= 300) {
      log::warn("could not report unhealthy on the ping (" +
                (r.status == 0 ? r.error : "HTTP " + std::to_string(r.status)) + ")");
    }
  }
  return 1;
}

}  // namespace podworker::worker

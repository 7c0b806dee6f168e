// Fitness checks at worker start: the SDK's thresholds and switches, the handler's own checks, and
// the `worker` executable refusing to start on an unfit machine while telling the endpoint so.
#include <doctest/doctest.h>

#include <cstdlib>
#include <stdexcept>
#include <vector>

#include "child_process.h"
#include "fitness_checks.h"
#include "http_client.h"
#include "podworker/endpoint/server.h"
#include "podworker/fitness.h"

namespace podworker::test {
namespace {

using namespace std::chrono_literals;
using worker::FitnessConfig;
using worker::run_fitness_checks;

// Sets environment variables for one scope and restores what was there before.
class ScopedEnv {
 public:
  ScopedEnv(std::initializer_list<std::pair<const char*, const char*>> vars) {
    for (const auto& [name, value] : vars) {
      const char* old = std::getenv(name);
      saved_.push_back({name, old ? std::optional<std::string>(old) : std::nullopt});
      if (value == nullptr) {
        ::unsetenv(name);
      } else {
        ::setenv(name, value, 1);
      }
    }
  }
  ~ScopedEnv() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        ::setenv(name, value->c_str(), 1);
      } else {
        ::unsetenv(name);
      }
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::vector<std::pair<const char*, std::optional<std::string>>> saved_;
};

endpoint::Options endpoint_options() {
  endpoint::Options o;
  o.port = 0;
  o.rate_limit = false;
  o.sweep_interval = 20ms;
  o.shutdown_timeout = 2s;
  return o;
}

std::string get_text(const std::string& url) {
  worker::HttpClient http("", 2000ms);
  const auto r = http.get(url, 10s);
  REQUIRE(r.status == 200);
  return r.body;
}

TEST_CASE("fitness: the SDK's variables and defaults") {
  {
    const ScopedEnv env{{"RUNPOD_MIN_MEMORY_GB", nullptr},
                        {"RUNPOD_MIN_DISK_PERCENT", nullptr},
                        {"RUNPOD_MIN_CUDA_VERSION", nullptr},
                        {"RUNPOD_SKIP_GPU_CHECK", nullptr},
                        {"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", nullptr}};
    const FitnessConfig c = FitnessConfig::from_env();
    CHECK(c.min_memory_gb == 4.0);
    CHECK(c.min_disk_percent == 10.0);
    CHECK(c.min_cuda_version == "11.8");
    CHECK_FALSE(c.skip_gpu);
    CHECK_FALSE(c.skip_system);
  }
  {
    const ScopedEnv env{{"RUNPOD_MIN_MEMORY_GB", "2.5"},
                        {"RUNPOD_MIN_DISK_PERCENT", "20"},
                        {"RUNPOD_MIN_CUDA_VERSION", "12.4"},
                        {"RUNPOD_SKIP_GPU_CHECK", "True"},
                        {"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "false"}};
    const FitnessConfig c = FitnessConfig::from_env();
    CHECK(c.min_memory_gb == 2.5);
    CHECK(c.min_disk_percent == 20.0);
    CHECK(c.min_cuda_version == "12.4");
    CHECK(c.skip_gpu);
    CHECK_FALSE(c.skip_system);
  }
  {
    const ScopedEnv env{{"RUNPOD_MIN_MEMORY_GB", "lots"}};
    CHECK_THROWS_WITH_AS(FitnessConfig::from_env(), doctest::Contains("RUNPOD_MIN_MEMORY_GB"),
                         std::invalid_argument);
  }
  {
    const ScopedEnv env{{"RUNPOD_MIN_CUDA_VERSION", "twelve"}};
    CHECK_THROWS_WITH_AS(FitnessConfig::from_env(), doctest::Contains("RUNPOD_MIN_CUDA_VERSION"),
                         std::invalid_argument);
  }
  CHECK(worker::parse_cuda_version("11.8") == 11080);
  CHECK(worker::parse_cuda_version("12.10") == 12100);
  CHECK(worker::parse_cuda_version("13") == 13000);
  CHECK_THROWS_AS(worker::parse_cuda_version("12.x"), std::invalid_argument);
  CHECK_THROWS_AS(worker::parse_cuda_version(""), std::invalid_argument);
}

TEST_CASE("fitness: the defaults pass on this machine") {
  const fitness::Registry none;
  const auto failure = run_fitness_checks(FitnessConfig{}, none);
  CHECK_MESSAGE(!failure.has_value(), (failure ? failure->message() : std::string()));
}

TEST_CASE("fitness: thresholds above the machine fail, naming the check and the variable") {
  const fitness::Registry none;
  FitnessConfig memory;
  memory.min_memory_gb = 100000;
  auto f = run_fitness_checks(memory, none);
  REQUIRE(f.has_value());
  CHECK(f->check == "memory");
  CHECK(f->reason.find("insufficient memory") != std::string::npos);
  CHECK(f->reason.find("RUNPOD_MIN_MEMORY_GB") != std::string::npos);

  FitnessConfig disk;
  disk.min_disk_percent = 100.5;  // no disk is more than wholly free
  f = run_fitness_checks(disk, none);
  REQUIRE(f.has_value());
  CHECK(f->check == "disk");
  CHECK(f->reason.find("on /") != std::string::npos);
  CHECK(f->reason.find("RUNPOD_MIN_DISK_PERCENT") != std::string::npos);
}

TEST_CASE("fitness: RUNPOD_SKIP_AUTO_SYSTEM_CHECKS skips the system checks, not the handler's") {
  fitness::Registry checks;
  int ran = 0;
  checks.add("counted", [&] { ++ran; });
  checks.set_requires_cuda();
  FitnessConfig c;
  c.min_memory_gb = 100000;
  c.min_disk_percent = 100.5;
  c.min_cuda_version = "99.0";
  c.skip_system = true;
  CHECK_FALSE(run_fitness_checks(c, checks).has_value());
  CHECK(ran == 1);

  const ScopedEnv env{{"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true"},
                      {"RUNPOD_MIN_MEMORY_GB", "100000"}};
  CHECK_FALSE(run_fitness_checks(FitnessConfig::from_env(), checks).has_value());
  CHECK(ran == 2);
}

TEST_CASE(
    "fitness: a handler-registered check that throws fails the start; later ones do not run") {
  fitness::Registry checks;
  std::vector<std::string> ran;
  checks.add("first", [&] { ran.push_back("first"); });
  checks.add("weights present", [&] {
    ran.push_back("weights present");
    throw std::runtime_error("model.gguf not found");
  });
  checks.add("third", [&] { ran.push_back("third"); });
  const auto f = run_fitness_checks(FitnessConfig{}, checks);
  REQUIRE(f.has_value());
  CHECK(f->check == "weights present");
  CHECK(f->reason == "model.gguf not found");
  CHECK(f->message() == "fitness check \"weights present\" failed: model.gguf not found");
  CHECK(ran == std::vector<std::string>{"first", "weights present"});

  // The process-wide registry the handler API writes to is the one the worker reads.
  fitness::registry().clear();
  fitness::register_check("registered", [] { throw std::runtime_error("no license"); });
  const auto g = run_fitness_checks(FitnessConfig{}, fitness::registry());
  fitness::registry().clear();
  REQUIRE(g.has_value());
  CHECK(g->check == "registered");
}

TEST_CASE("fitness: a handler that needs CUDA fails without a GPU; RUNPOD_SKIP_GPU_CHECK skips") {
  fitness::Registry needs_cuda;
  needs_cuda.set_requires_cuda();
  const worker::GpuProbe gpu = worker::probe_gpu();
  const auto f = run_fitness_checks(FitnessConfig{}, needs_cuda);
  if (gpu.devices == 0) {
    REQUIRE(f.has_value());
    CHECK(f->check == "gpu");
    CHECK(f->reason.find("no GPU is visible") != std::string::npos);
    CHECK(f->reason.find(gpu.why_none) != std::string::npos);
  } else {
    MESSAGE("GPU present: driver CUDA ", gpu.driver_version, ", runtime ", gpu.runtime_version);
    CHECK(gpu.driver_version >= 11080);
    CHECK_FALSE(f.has_value());
    FitnessConfig too_new;
    too_new.min_cuda_version = "99.0";
    const auto g = run_fitness_checks(too_new, needs_cuda);
    REQUIRE(g.has_value());
    CHECK(g->reason.find("RUNPOD_MIN_CUDA_VERSION=99.0") != std::string::npos);
  }
  FitnessConfig skip;
  skip.skip_gpu = true;
  skip.min_cuda_version = "99.0";
  CHECK_FALSE(run_fitness_checks(skip, needs_cuda).has_value());
}

TEST_CASE("worker process: an unfit machine pings unhealthy, exits non-zero and names the reason") {
  endpoint::Server server(endpoint_options());
  server.start();
  const std::string v2 = server.url() + "/v2/local";
  ChildProcess worker(PODWORKER_WORKER_BINARY, {"--handler", "echo"},
                      {"RUNPOD_WEBHOOK_GET_JOB=" + v2 + "/job-take/$ID",
                       "RUNPOD_WEBHOOK_POST_OUTPUT=" + v2 + "/job-done/$RUNPOD_POD_ID/$ID",
                       "RUNPOD_WEBHOOK_PING=" + v2 + "/ping/$RUNPOD_POD_ID", "RUNPOD_POD_ID=unfit",
                       "RUNPOD_LOG_LEVEL=WARN", "RUNPOD_MIN_MEMORY_GB=100000"});
  const auto line = worker.read_line_with("insufficient memory", 20s);
  REQUIRE(line.has_value());
  CHECK(line->find("unfit to take jobs: fitness check") != std::string::npos);
  CHECK(line->find("RUNPOD_MIN_MEMORY_GB") != std::string::npos);
  CHECK(worker.wait() == 1);

  const std::string scrape = get_text(server.url() + "/metrics");
  CHECK(scrape.find("\npodworker_endpoint_unhealthy_pings_total 1\n") != std::string::npos);
  // It never took a job, nor counts as a worker: the unhealthy ping is not a heartbeat.
  CHECK(scrape.find("route=\"job-take\"") == std::string::npos);
  CHECK(scrape.find("podworker_endpoint_workers{endpoint=\"local\",state=\"idle\"} 1") ==
        std::string::npos);
}

TEST_CASE("worker process: the same worker starts when RUNPOD_SKIP_AUTO_SYSTEM_CHECKS is set") {
  endpoint::Server server(endpoint_options());
  server.start();
  const std::string v2 = server.url() + "/v2/local";
  ChildProcess worker(PODWORKER_WORKER_BINARY, {"--handler", "echo"},
                      {"RUNPOD_WEBHOOK_GET_JOB=" + v2 + "/job-take/$ID",
                       "RUNPOD_WEBHOOK_POST_OUTPUT=" + v2 + "/job-done/$RUNPOD_POD_ID/$ID",
                       "RUNPOD_WEBHOOK_PING=" + v2 + "/ping/$RUNPOD_POD_ID",
                       "RUNPOD_POD_ID=skipper", "RUNPOD_LOG_LEVEL=INFO",
                       "RUNPOD_MIN_MEMORY_GB=100000", "RUNPOD_SKIP_AUTO_SYSTEM_CHECKS=true"});
  REQUIRE(worker.read_line_with("taking jobs", 20s).has_value());
  worker::HttpClient http("", 2000ms);
  const auto r =
      http.post(server.url() + "/v2/local/runsync", R"({"input":{"fit":true}})", "", 30s);
  CHECK(r.status == 200);
  CHECK(r.body.find("\"COMPLETED\"") != std::string::npos);
  worker.signal(SIGTERM);
  CHECK(worker.wait() == 0);
  CHECK(
      get_text(server.url() + "/metrics").find("\npodworker_endpoint_unhealthy_pings_total 0\n") !=
      std::string::npos);
}

}  // namespace
}  // namespace podworker::test

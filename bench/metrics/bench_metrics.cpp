// bench_metrics: the cost of the endpoint's metrics on the job path, measured apart from the
// network so a busy machine disturbs it little. One job cycle is what /runsync costs the store:
// submit, take, a stream chunk, the result, two status reads, the worker's request brackets. It
// runs on the memory store bare and wrapped in MeteredStore, on 1 and 2 threads (the endpoint's
// default I/O threads), alternating, best of --rounds; then one HTTP request count and a render.
//
//   bench_metrics [--jobs N] [--rounds R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_table.h"
#include "http_metrics.h"
#include "memory_store.h"
#include "metered_store.h"
#include "podworker/metrics.h"

namespace pe = podworker::endpoint;
namespace pm = podworker::metrics;
using Clock = std::chrono::steady_clock;

namespace {

void cycle(pe::JobStore& store, const std::string& worker, const std::string& id) {
  pe::NewJob job;
  job.id = id;
  job.input_json = R"({"prompt":"hello"})";
  if (!store.submit(std::move(job)).accepted) std::abort();
  store.worker_begin(worker);
  const auto taken = store.take(worker, 1);
  if (taken.empty()) std::abort();
  store.worker_begin(worker);
  store.post_stream(worker, taken.front().id, R"({"text":"hi"})");
  store.worker_begin(worker);
  pe::WorkerResult result;
  result.output_json = R"({"text":"hi"})";
  store.post_result(worker, taken.front().id, std::move(result));
  store.status(id);
  store.status(id);
}

// ns per job cycle with `threads` threads sharing one store.
double run(bool metered, int threads, int jobs) {
  pe::StoreOptions o;
  o.retention = std::chrono::hours(1);
  pm::Registry registry;
  std::unique_ptr<pe::JobStore> store = std::make_unique<pe::MemoryStore>(o, nullptr);
  if (metered) store = std::make_unique<pe::MeteredStore>(std::move(store), registry, "local");
  const auto start = Clock::now();
  {
    std::vector<std::jthread> pool;
    for (int t = 0; t < threads; ++t) {
      pool.emplace_back([&, t] {
        const std::string worker = "w" + std::to_string(t);
        for (int i = 0; i < jobs / threads; ++i)
          cycle(*store, worker, "job-" + std::to_string(t) + "-" + std::to_string(i));
      });
    }
  }
  return std::chrono::duration<double, std::nano>(Clock::now() - start).count() / jobs;
}

}  // namespace

int main(int argc, char** argv) {
  std::string json;
  try {
    json = podworker::bench::take_json_option(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "bench_metrics: %s\n", e.what());
    return 2;
  }
  podworker::bench::Report report("bench_metrics");
  int jobs = 200000, rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--jobs")
      jobs = std::stoi(argv[i + 1]);
    else if (flag == "--rounds")
      rounds = std::stoi(argv[i + 1]);
  }
  std::printf(
      "bench_metrics: store job cycle (submit, take, stream chunk, result, 2 status, worker "
      "brackets), %d jobs, best of %d\n",
      jobs, rounds);
  auto& cycle_table = report.table("store_cycle");
  cycle_table.header("%s   %s   %s   %s\n", "threads", "bare ns/job", "metered ns/job",
                     "added ns/job");
  for (const int threads : {1, 2}) {
    double bare = 1e18, metered = 1e18;
    for (int r = 0; r < rounds; ++r) {  // alternating, so drift in the machine's load hits both
      bare = std::min(bare, run(false, threads, jobs));
      metered = std::min(metered, run(true, threads, jobs));
    }
    cycle_table.row("%7d   %11.0f   %14.0f   %12.0f\n", threads, bare, metered, metered - bare);
  }

  pm::Registry registry;
  pe::HttpMetrics http(registry);
  constexpr int kRequests = 2'000'000;
  auto start = Clock::now();
  for (int i = 0; i < kRequests; ++i) http.request(pe::Op::runsync, 200);
  const double per_request =
      std::chrono::duration<double, std::nano>(Clock::now() - start).count() / kRequests;
  pe::MeteredStore store(std::make_unique<pe::MemoryStore>(pe::StoreOptions{}, nullptr), registry,
                         "local");
  registry.on_collect([&store] { store.collect(); });
  constexpr int kRenders = 200;
  start = Clock::now();
  std::size_t bytes = 0;
  for (int i = 0; i < kRenders; ++i) bytes = registry.render().size();
  const double per_render =
      std::chrono::duration<double, std::micro>(Clock::now() - start).count() / kRenders;
  std::printf("HTTP request count: %.1f ns; a scrape (%zu bytes) renders in %.0f us\n", per_request,
              bytes, per_render);
  auto& costs = report.table("costs");
  costs.set_columns({"http request ns", "scrape bytes", "scrape render us"});
  costs.add({per_request, static_cast<std::int64_t>(bytes), per_render});
  try {
    report.write(json);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_metrics: %s\n", e.what());
    return 1;
  }
  return 0;
}

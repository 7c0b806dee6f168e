#include "store_matrix.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "bench_table.h"
#include "child_process.h"
#include "http_load.h"
#include "process_stats.h"
#include "podworker/endpoint/server.h"
#include "worker_env.h"

namespace podworker::bench {

namespace {

namespace fs = std::filesystem;
// Slots of the open-loop workers: the SDK runs one job per second per slot (its fixed sleep), so 64
// sustain 50 jobs/s and the row compares latency, not a queue growing without bound.
constexpr const char* kOpenSlots = "64";
using Clock = std::chrono::steady_clock;

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  ::close(fd);
  if (!ok) throw std::runtime_error("no free loopback port");
  return ntohs(addr.sin_port);
}

// Output of a shell command (redis-cli, redis-benchmark); empty when it could not run.
std::string command_output(const std::string& command) {
  std::string out;
  if (FILE* pipe = ::popen(command.c_str(), "r"); pipe != nullptr) {
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;)
      out.append(buffer, n);
    ::pclose(pipe);
  }
  return out;
}

// An executable's path from PATH (ChildProcess takes a path, not a name).
std::string which(const std::string& name) {
  std::string path = command_output("command -v " + name);
  while (!path.empty() && (path.back() == '\n' || path.back() == '\r')) path.pop_back();
  if (path.empty()) throw std::runtime_error(name + " not found (scripts/setup.sh installs it)");
  return path;
}

// redis-server on a free port, without persistence (the benchmark measures the store's round trips,
// not the disk); stopped with the object.
struct RedisServer {
  std::uint16_t port = free_port();
  ChildProcess process;
  explicit RedisServer(const fs::path& logs)
      : process({which("redis-server"), "--port", std::to_string(port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no"},
                {}, (logs / "redis.log").string()) {
    const auto deadline = Clock::now() + std::chrono::seconds(15);
    const std::string ping = "redis-cli -p " + std::to_string(port) + " PING 2>/dev/null";
    while (command_output(ping).rfind("PONG", 0) != 0) {
      if (Clock::now() > deadline || !process.running())
        throw std::runtime_error("redis-server did not start");
      std::this_thread::sleep_for(std::chrono::milliseconds(50));  // polling with a deadline
    }
  }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port); }
};

struct Replicas {
  std::vector<std::unique_ptr<endpoint::Server>> servers;
  std::vector<Target> targets;
};

Replicas start_replicas(const MatrixOptions& o, const std::string& store, int count,
                        const std::vector<std::string>& ids) {
  Replicas r;
  for (int i = 0; i < count; ++i) {
    endpoint::Options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.endpoint_ids = ids;
    options.rate_limit = false;
    options.io_threads = o.server_threads;
    options.store = store;
    options.take_wait = std::chrono::milliseconds(2000);
    options.stop_wait = std::chrono::milliseconds(2000);
    if (o.runsync_retention_ms > 0)
      options.runsync_retention = std::chrono::milliseconds(o.runsync_retention_ms);
    r.servers.push_back(std::make_unique<endpoint::Server>(options));
    Target t;
    t.port = r.servers.back()->start();
    r.targets.push_back(t);
  }
  return r;
}

LoadResult merge(std::vector<LoadResult>& parts) {
  LoadResult all;
  for (auto& p : parts) {
    all.ok += p.ok;
    all.errors += p.errors;
    if (all.first_error.empty()) all.first_error = p.first_error;
    all.seconds = std::max(all.seconds, p.seconds);
    all.latencies_us.insert(all.latencies_us.end(), p.latencies_us.begin(), p.latencies_us.end());
  }
  std::sort(all.latencies_us.begin(), all.latencies_us.end());
  return all;
}

// CPU seconds used so far by the bench's processes: this one (the endpoint replicas and the load
// client), the workers, redis-server (-1: none).
struct CpuUse {
  double bench = 0, workers = 0, redis = 0;
};
CpuUse cpu_now(const std::vector<pid_t>& workers, pid_t redis) {
  CpuUse u;
  u.bench = process_cpu_seconds();
  for (const pid_t w : workers) u.workers += std::max(0.0, process_cpu_seconds(w));
  if (redis > 0) u.redis = std::max(0.0, process_cpu_seconds(redis));
  return u;
}

// The load average and the processes' CPU over one measurement window, sampled on a thread of its
// own at the window's start and end (run_load's window starts `warmup` after it is called).
class CpuWindow {
 public:
  CpuWindow(std::vector<pid_t> workers, pid_t redis, Clock::duration warmup, Clock::duration measure)
      : sampler_([this, workers = std::move(workers), redis, start = Clock::now() + warmup, measure] {
          std::this_thread::sleep_until(start);
          load_ = load_average();
          before_ = cpu_now(workers, redis);
          std::this_thread::sleep_until(start + measure);
          after_ = cpu_now(workers, redis);
        }) {}
  // Waits for the window's end; then CPU µs per job of each, for `jobs` jobs in the window.
  CpuUse per_job(std::uint64_t jobs) {
    if (sampler_.joinable()) sampler_.join();
    const double n = static_cast<double>(std::max<std::uint64_t>(jobs, 1));
    return {(after_.bench - before_.bench) * 1e6 / n, (after_.workers - before_.workers) * 1e6 / n,
            (after_.redis - before_.redis) * 1e6 / n};
  }
  std::string load() const { return load_; }

 private:
  std::string load_ = "?";
  CpuUse before_, after_;
  std::jthread sampler_;
};

void print(Table& table, const char* label, int replicas, int c, const LoadResult& r, const std::string& load,
           const CpuUse& us) {
  table.row("%-16s %3d %5d %9llu %6.1f %10.1f %9.3f %9.3f %7llu %6s %9.0f %9.0f %9.0f %9.0f\n", label,
            replicas, c, static_cast<unsigned long long>(r.ok), r.seconds, r.per_second(), r.percentile_ms(50),
            r.percentile_ms(99), static_cast<unsigned long long>(r.errors), load, us.bench, us.workers, us.redis,
            us.bench + us.workers + us.redis);
  if (!r.first_error.empty()) std::printf("  first error: %s\n", r.first_error.c_str());
  std::fflush(stdout);
}

bool warm_up(const Target& t, const std::string& ep) {
  try {
    const auto first =
        request_once(t, {true, "/v2/" + ep + "/runsync?wait=60000", R"({"input":{"w":1}})"},
                     std::chrono::seconds(90));
    return first.status == 200 && completed(first.body);
  } catch (const std::exception&) {
    return false;
  }
}

// Closed loop at concurrency C: one worker per replica (--concurrency C split between them), the C
// client connections spread round-robin over the replicas.
void closed_row(Table& table, const MatrixOptions& o, const Replicas& reps,
                const std::string& label, int c, pid_t redis) {
  const std::string ep = "c" + std::to_string(c);
  const int n = static_cast<int>(reps.targets.size());
  std::vector<std::unique_ptr<ChildProcess>> workers;
  for (int i = 0; i < n; ++i) {
    const int slots = std::max(1, c / n + (i < c % n ? 1 : 0));
    const std::string id = "bench-" + label + "-" + ep + "-" + std::to_string(i);
    workers.push_back(std::make_unique<ChildProcess>(
        std::vector<std::string>{o.worker, "--handler", "echo", "--concurrency",
                                 std::to_string(slots)},
        worker_env(reps.targets[static_cast<std::size_t>(i)], ep, id),
        (o.logs / (id + ".log")).string()));
  }
  for (const auto& t : reps.targets) {
    if (!warm_up(t, ep)) {
      std::printf("%-16s %3d %5d  warm-up job did not complete; logs in %s\n", label.c_str(), n, c,
                  o.logs.string().c_str());
      return;
    }
  }
  std::vector<LoadResult> parts(reps.targets.size());
  const auto warmup = std::chrono::milliseconds(300);
  const auto measure = std::chrono::milliseconds(static_cast<long>(o.seconds * 1000));
  std::vector<pid_t> worker_pids;
  for (const auto& w : workers) worker_pids.push_back(w->pid());
  CpuWindow cpu(worker_pids, redis, warmup, measure);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < n; ++i) {
      const std::size_t conns = static_cast<std::size_t>(c / n + (i < c % n ? 1 : 0));
      if (conns == 0) continue;
      threads.emplace_back([&, i, conns] {
        LoadOptions load;
        load.connections = conns;
        load.threads = std::max(1u, o.client_threads / static_cast<unsigned>(n));
        load.measure = measure;
        load.warmup = warmup;
        load.accept = completed;
        const std::string path = "/v2/" + ep + "/runsync?wait=60000";
        parts[static_cast<std::size_t>(i)] =
            run_load(reps.targets[static_cast<std::size_t>(i)], load,
                     [&](std::size_t conn, std::uint64_t seq) {
                       return Request{true, path,
                                      R"({"input":{"client":)" + std::to_string(conn) + R"(,"n":)" +
                                          std::to_string(seq) + "}}"};
                     });
      });
    }
  }
  const LoadResult all = merge(parts);
  const CpuUse us = cpu.per_job(all.ok);
  print(table, label.c_str(), n, c, all, cpu.load(), us);
}

// Open loop: job k is due at k / rate whatever the earlier ones did; its latency counts from when
// it was due, so a stall shows in full (no coordinated omission).
void open_row(Table& table, const MatrixOptions& o, const Target& target, const std::string& label,
              const std::vector<std::string>& worker_argv, const std::string& ep) {
  const std::string id = "bench-open-" + label;
  ChildProcess worker(worker_argv, worker_env(target, ep, id), (o.logs / (id + ".log")).string());
  if (!warm_up(target, ep)) {
    std::printf("%-16s open loop: warm-up job did not complete; see %s\n", label.c_str(),
                worker.log_path().c_str());
    return;
  }
  const auto total = static_cast<std::uint64_t>(o.open_rate * o.open_seconds);
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  std::atomic<std::uint64_t> next{0};
  std::mutex mutex;
  LoadResult r;
  CpuWindow cpu({worker.pid()}, -1, start - Clock::now(),
                std::chrono::milliseconds(static_cast<long>(o.open_seconds * 1000)));
  {
    std::vector<std::jthread> senders;
    for (int t = 0; t < 16; ++t) {
      senders.emplace_back([&] {
        for (std::uint64_t k; (k = next.fetch_add(1)) < total;) {
          const auto due =
              start + std::chrono::microseconds(static_cast<long long>(1e6 * k / o.open_rate));
          std::this_thread::sleep_until(due);
          bool ok = false;
          std::string error;
          try {
            const auto reply =
                request_once(target, {true, "/v2/" + ep + "/runsync?wait=60000",
                                      R"({"input":{"n":)" + std::to_string(k) + "}}"});
            ok = reply.status == 200 && completed(reply.body);
            if (!ok) error = "status " + std::to_string(reply.status);
          } catch (const std::exception& e) {
            error = e.what();
          }
          const double us = std::chrono::duration<double, std::micro>(Clock::now() - due).count();
          const std::scoped_lock lock(mutex);
          if (ok) {
            ++r.ok;
            r.latencies_us.push_back(us);
          } else {
            ++r.errors;
            if (r.first_error.empty()) r.first_error = error;
          }
        }
      });
    }
  }
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(r.latencies_us.begin(), r.latencies_us.end());
  const CpuUse us = cpu.per_job(r.ok);
  print(table, label.c_str(), 1, 0, r, cpu.load(), us);
}

}  // namespace

int run_store_matrix(const MatrixOptions& o) {
  const bool want_redis = std::find(o.stores.begin(), o.stores.end(), "redis") != o.stores.end();
  std::unique_ptr<RedisServer> redis;
  if (want_redis) {
    redis = std::make_unique<RedisServer>(o.logs);
    std::printf(
        "limit: redis-benchmark -q -t set,get,lpush,lpop -n 100000 on this machine, now:\n%s\n",
        command_output("redis-benchmark -p " + std::to_string(redis->port) +
                       " -q -t set,get,lpush,lpop -n 100000 2>&1 | tr '\\r' '\\n' | grep 'requests "
                       "per second'")
            .c_str());
  }
  std::vector<std::string> ids;
  for (const int c : o.concurrency) ids.push_back("c" + std::to_string(c));
  ids.push_back("open-pw");
  ids.push_back("open-sdk");
  std::printf(
      "closed loop: /runsync, C client connections, echo worker(s) with --concurrency C in all; "
      "%.1f s windows, %u server I/O threads per replica; load: 1-minute load average at the window's "
      "start; \"us\": CPU µs per job in the window, of this process (endpoint replicas and load "
      "client), the workers, redis-server, and all\n",
      o.seconds, o.server_threads);
  if (o.runsync_retention_ms > 0) {
    std::printf("finished jobs kept %ld ms (--runsync-retention-ms): the windows include their removal\n",
                o.runsync_retention_ms);
  }
  Report report("bench_e2e");
  auto& closed = report.table("stores");
  // CPU per job in the window, µs: this process (endpoint replicas and load client), the workers,
  // redis-server, and all three: the figure to compare builds by when jobs/s swings with the
  // machine (at C=64 the processes fill both cores, so jobs/s is about cores / that sum).
  closed.header("%-16s %3s %5s %9s %6s %10s %9s %9s %7s %6s %9s %9s %9s %9s\n", "store", "rep", "C", "jobs", "s",
                "jobs/s", "p50 ms", "p99 ms", "errors", "load", "bench us", "worker us", "redis us", "all us");
  for (const auto& store : o.stores) {
    for (const int n : o.replicas) {
      if (store == "memory" && n > 1) continue;  // the memory store is one process's own
      if (store == "redis")
        command_output("redis-cli -p " + std::to_string(redis->port) + " FLUSHALL");
      const Replicas reps = start_replicas(o, store == "redis" ? redis->url() : "memory", n, ids);
      for (const int c : o.concurrency)
        closed_row(closed, o, reps, store, c, store == "redis" ? redis->process.pid() : -1);
    }
  }
  if (o.open_rate > 0) {
    std::printf(
        "\nopen loop: %.0f jobs/s arriving on a fixed schedule for %.1f s, /runsync, memory "
        "store, one worker with --concurrency %s; latency from each job's due time (C column: 0)\n",
        o.open_rate, o.open_seconds, kOpenSlots);
    const Replicas reps = start_replicas(o, "memory", 1, ids);
    auto& open = report.table("open_loop");
    open.set_columns(closed.columns());
    open_row(open, o, reps.targets[0], "podworker",
             {o.worker, "--handler", "echo", "--concurrency", kOpenSlots}, "open-pw");
    if (!o.python.empty() && fs::exists(o.python) && fs::exists(o.sdk_script)) {
      open_row(open, o, reps.targets[0], "runpod-sdk",
               {o.python, o.sdk_script, "--concurrency", kOpenSlots}, "open-sdk");
    } else {
      std::printf(
          "runpod-sdk open-loop row skipped: no Python environment (scripts/python-env.sh)\n");
    }
  }
  report.write(o.json);
  return 0;
}

}  // namespace podworker::bench

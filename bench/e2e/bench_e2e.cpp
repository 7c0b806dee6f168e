// bench_e2e: end-to-end jobs/s and /runsync p50/p99 latency of the `echo` handler through the local
// endpoint, with podworker's worker and with the official runpod-python worker (SDK) measured the
// same way in the same run, at worker concurrency 1, 8 and 64. Each row: a worker process with
// --concurrency C pulling from its own endpoint id, C client connections each sending /runsync the
// moment the previous one returns (closed loop), for a fixed window. Prints both and the ratio.
// With --python, the rows are the same trivial runpod-python handler file (python_echo.py) under
// `worker --python` and under the SDK, next to the C++ echo, and a table of what the Python bridge
// costs per job over the C++ handler.
//
//   bench_e2e [--python] [--worker PATH] [--python-exe PATH] [--sdk-script PATH] [--no-sdk]
//             [--concurrency 1,8,64] [--seconds 3] [--sdk-seconds 4]
//             [--client-threads 2] [--server-threads 2] [--log-dir DIR]
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_table.h"
#include "child_process.h"
#include "http_load.h"
#include "podworker/endpoint/server.h"
#include "podworker/json.h"
#include "podworker/log.h"
#include "store_matrix.h"
#include "worker_env.h"

#ifndef PODWORKER_WORKER_PATH
#define PODWORKER_WORKER_PATH ""
#endif
#ifndef PODWORKER_VENV_PYTHON
#define PODWORKER_VENV_PYTHON ""
#endif
#ifndef PODWORKER_SDK_SCRIPT
#define PODWORKER_SDK_SCRIPT ""
#endif
#ifndef PODWORKER_PYTHON_ECHO
#define PODWORKER_PYTHON_ECHO ""
#endif

namespace {

namespace fs = std::filesystem;
using podworker::bench::ChildProcess;
using podworker::bench::LoadOptions;
using podworker::bench::LoadResult;
using podworker::bench::Request;
using podworker::bench::Target;
using podworker::bench::completed;
using podworker::bench::worker_env;

struct Args {
  std::string worker = PODWORKER_WORKER_PATH;
  std::string python = PODWORKER_VENV_PYTHON;
  std::string sdk_script = PODWORKER_SDK_SCRIPT;
  std::string python_echo = PODWORKER_PYTHON_ECHO;
  bool python_handler = false;  // --python: the Python-handler comparison
  bool sdk = true;
  std::vector<int> concurrency{1, 8, 64};
  double seconds = 3.0;
  double sdk_seconds = 4.0;
  unsigned client_threads = 2;
  unsigned server_threads = 2;
  long runsync_retention_ms = 0;  // 0: the endpoint's default
  std::string log_dir;
  // The store table (store_matrix.h) instead of the worker comparison, when --store is given.
  std::vector<std::string> stores;
  std::vector<int> replicas{1};
  double open_rate = 50;
  double open_seconds = 4;
};

template <typename T>
std::vector<T> parse_list(const std::string& text, T (*convert)(const std::string&)) {
  std::vector<T> out;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) out.push_back(convert(item));
  return out;
}
int positive(const std::string& s) {
  const int v = std::stoi(s);
  if (v <= 0) throw std::invalid_argument("expected a positive number, got " + s);
  return v;
}
std::string store_kind(const std::string& s) {
  if (s != "memory" && s != "redis") throw std::invalid_argument("--store takes memory and/or redis, got " + s);
  return s;
}

Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--worker") args.worker = value();
    else if (flag == "--python") args.python_handler = true;
    else if (flag == "--python-exe") args.python = value();
    else if (flag == "--python-echo") args.python_echo = value();
    else if (flag == "--sdk-script") args.sdk_script = value();
    else if (flag == "--no-sdk") args.sdk = false;
    else if (flag == "--seconds") args.seconds = std::stod(value());
    else if (flag == "--sdk-seconds") args.sdk_seconds = std::stod(value());
    else if (flag == "--client-threads") args.client_threads = static_cast<unsigned>(std::stoul(value()));
    else if (flag == "--server-threads") args.server_threads = static_cast<unsigned>(std::stoul(value()));
    else if (flag == "--log-dir") args.log_dir = value();
    else if (flag == "--store") args.stores = parse_list<std::string>(value(), store_kind);
    else if (flag == "--replicas") args.replicas = parse_list<int>(value(), positive);
    else if (flag == "--open-rate") args.open_rate = std::stod(value());
    else if (flag == "--open-seconds") args.open_seconds = std::stod(value());
    else if (flag == "--runsync-retention-ms") args.runsync_retention_ms = std::stol(value());
    else if (flag == "--concurrency") {
      args.concurrency.clear();
      std::stringstream in(value());
      for (std::string item; std::getline(in, item, ',');) {
        const int c = std::stoi(item);
        if (c <= 0) throw std::invalid_argument("concurrency must be positive");
        args.concurrency.push_back(c);
      }
    } else if (flag == "--help" || flag == "-h") {
      std::cout
          << "usage: bench_e2e [--python] [--worker PATH] [--python-exe PATH] [--sdk-script PATH]\n"
             "                 [--python-echo PATH] [--no-sdk]\n"
             "                 [--concurrency 1,8,64] [--seconds S] [--sdk-seconds S]\n"
             "                 [--client-threads N] [--server-threads N] [--log-dir DIR]\n"
             "                 [--json FILE]\n"
             "                 [--store memory,redis [--replicas 1,2] [--open-rate 50] "
             "[--open-seconds 4]\n"
             "                 [--runsync-retention-ms MS]]\n"
             "--store: jobs/s and p50/p99 per store and replica count (redis-server started on a\n"
             "free port, redis-benchmark's figures as the limit), then an open-loop row per "
             "worker\n"
             "--python: python_echo.py under worker --python and under the SDK, next to the C++\n"
             "echo, and the bridge's cost per job\n"
             "The SDK side needs the Python environment: scripts/python-env.sh\n";
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown flag " + flag);
    }
  }
  if (args.seconds <= 0 || args.sdk_seconds <= 0) throw std::invalid_argument("windows must be positive");
  return args;
}

// podworker's C++ echo, podworker running python_echo.py, the SDK running its script (or, with
// --python, python_echo.py).
enum class Kind { podworker, podworker_python, sdk };
const char* name(Kind kind) {
  switch (kind) {
    case Kind::podworker:
      return "podworker";
    case Kind::podworker_python:
      return "pw-python";
    case Kind::sdk:
      return "runpod-sdk";
  }
  return "";
}

std::string endpoint_id(Kind kind, int concurrency) {
  const char* prefix = kind == Kind::podworker ? "pw" : kind == Kind::podworker_python ? "pwpy" : "sdk";
  return std::string(prefix) + "-c" + std::to_string(concurrency);
}

std::string runsync_body(std::size_t connection, std::uint64_t sequence) {
  return R"({"input":{"prompt":"benchmark","client":)" + std::to_string(connection) +
         R"(,"n":)" + std::to_string(sequence) + "}}";
}

struct Row {
  Kind kind;
  int concurrency;
  LoadResult result;
  bool ran = false;
  std::string note;
};

// One row: start the worker, wait until a first job goes through, load it, stop it.
Row measure(Kind kind, int concurrency, const Args& args, const Target& target, const fs::path& logs) {
  Row row{kind, concurrency, {}, false, {}};
  const std::string ep = endpoint_id(kind, concurrency);
  const std::string worker_id = "bench-" + ep;
  std::vector<std::string> argv;
  if (kind == Kind::podworker) {
    argv = {args.worker, "--handler", "echo", "--concurrency", std::to_string(concurrency)};
  } else if (kind == Kind::podworker_python) {
    argv = {args.worker,      "--python",      args.python_echo, "--python-exe",
            args.python,      "--concurrency", std::to_string(concurrency)};
  } else if (args.python_handler) {
    argv = {args.python, args.python_echo};
  } else {
    argv = {args.python, args.sdk_script, "--concurrency", std::to_string(concurrency)};
  }
  const auto log_path = (logs / (worker_id + ".log")).string();
  auto env = worker_env(target, ep, worker_id);
  env["BENCH_CONCURRENCY"] = std::to_string(concurrency);  // python_echo.py's concurrency_modifier
  ChildProcess worker(argv, env, log_path);

  const std::string path = "/v2/" + ep + "/runsync?wait=60000";
  // Readiness: the first job completes once the worker is up (the SDK imports for a second or two).
  try {
    const auto first = podworker::bench::request_once(
        target, {true, path, R"({"input":{"prompt":"warm-up"}})"}, std::chrono::seconds(90));
    if (first.status != 200 || !completed(first.body)) {
      row.note = "warm-up job did not complete (" + std::to_string(first.status) + "); see " + log_path;
      return row;
    }
  } catch (const std::exception& e) {
    row.note = std::string("warm-up failed: ") + e.what() + "; see " + log_path;
    return row;
  }

  LoadOptions load;
  load.connections = static_cast<std::size_t>(concurrency);
  load.threads = args.client_threads;
  const double window = kind == Kind::sdk ? args.sdk_seconds : args.seconds;
  load.measure = std::chrono::milliseconds(static_cast<long>(window * 1000));
  // The SDK takes up to a second (its fixed sleep) to fill its slots: give it that before counting.
  load.warmup = std::chrono::milliseconds(kind == Kind::sdk ? 1500 : 300);
  load.accept = completed;
  row.result = podworker::bench::run_load(target, load, [&](std::size_t connection, std::uint64_t sequence) {
    return Request{true, path, runsync_body(connection, sequence)};
  });
  row.ran = true;
  worker.stop();
  return row;
}

void print_row(const Row& row, podworker::bench::Table& table) {
  if (!row.ran) {
    std::printf("%-11s %5d  %s\n", name(row.kind), row.concurrency, row.note.c_str());
    return;
  }
  const auto& r = row.result;
  table.row("%-11s %5d %9llu %6.1f %10.1f %9.3f %9.3f %7llu\n", name(row.kind), row.concurrency,
            static_cast<unsigned long long>(r.ok), r.seconds, r.per_second(), r.percentile_ms(50),
            r.percentile_ms(99), static_cast<unsigned long long>(r.errors));
  if (!r.first_error.empty()) std::printf("  first error: %s\n", r.first_error.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // The table is the output; the in-process endpoint's start-up notes would only interleave.
  podworker::log::set_level(podworker::log::Level::warn);
  try {
    const std::string json = podworker::bench::take_json_option(argc, argv);
    Args args = parse_args(argc, argv);
    if (args.worker.empty() || !fs::exists(args.worker)) {
      throw std::invalid_argument("podworker worker executable not found (--worker PATH)");
    }
    std::string sdk_note;
    if (args.sdk && (args.python.empty() || !fs::exists(args.python))) {
      sdk_note = "SDK rows skipped: no Python environment at '" + args.python +
                 "' (run scripts/python-env.sh, or pass --python)";
      args.sdk = false;
    }
    if (args.sdk && !args.python_handler && (args.sdk_script.empty() || !fs::exists(args.sdk_script))) {
      throw std::invalid_argument("SDK worker script not found (--sdk-script PATH)");
    }
    if (args.python_handler) {
      if (args.python.empty() || !fs::exists(args.python)) {
        throw std::invalid_argument("--python needs an interpreter (--python-exe PATH, or "
                                    "scripts/python-env.sh for the default)");
      }
      if (args.python_echo.empty() || !fs::exists(args.python_echo)) {
        throw std::invalid_argument("python_echo.py not found (--python-echo PATH)");
      }
    }
    const fs::path logs = args.log_dir.empty()
                              ? fs::temp_directory_path() / ("podworker-bench-e2e-" + std::to_string(getpid()))
                              : fs::path(args.log_dir);
    fs::create_directories(logs);
    if (!args.stores.empty()) {
      podworker::bench::MatrixOptions m;
      m.worker = args.worker;
      m.python = args.sdk ? args.python : std::string();
      m.sdk_script = args.sdk_script;
      m.stores = args.stores;
      m.replicas = args.replicas;
      m.concurrency = args.concurrency;
      m.seconds = args.seconds;
      m.client_threads = args.client_threads;
      m.server_threads = args.server_threads;
      m.open_rate = args.open_rate;
      m.open_seconds = args.open_seconds;
      m.runsync_retention_ms = args.runsync_retention_ms;
      m.logs = logs;
      m.json = json;
      if (!sdk_note.empty()) std::printf("%s\n", sdk_note.c_str());
      return podworker::bench::run_store_matrix(m);
    }

    podworker::endpoint::Options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.endpoint_ids.clear();
    for (const int c : args.concurrency) {
      for (const Kind kind : {Kind::podworker, Kind::podworker_python, Kind::sdk}) {
        options.endpoint_ids.push_back(endpoint_id(kind, c));
      }
    }
    options.rate_limit = false;
    options.io_threads = args.server_threads;
    // Short long polls so a stopped worker's last job-take ends quickly between rows.
    options.take_wait = std::chrono::milliseconds(2000);
    options.stop_wait = std::chrono::milliseconds(2000);
    podworker::endpoint::Server server(options);
    Target target;
    target.port = server.start();

    std::printf("podworker end-to-end benchmark: %s, /runsync closed loop with C client "
                "connections against a worker with --concurrency C\n"
                "in-process endpoint (%u I/O threads, rate limits off), %u client threads, windows: "
                "podworker %.1f s, SDK %.1f s\n",
                args.python_handler ? "C++ echo and python_echo.py (worker --python, SDK)"
                                    : "echo handler",
                args.server_threads, args.client_threads, args.seconds, args.sdk_seconds);
    if (!sdk_note.empty()) std::printf("%s\n", sdk_note.c_str());
    podworker::bench::Report report("bench_e2e");
    auto& table = report.table("workers");
    table.header("%-11s %5s %9s %6s %10s %9s %9s %7s\n", "worker", "C", "jobs", "s", "jobs/s",
                 "p50 ms", "p99 ms", "errors");

    std::vector<Row> ours;
    std::vector<Row> ours_python;
    std::vector<Row> sdk;
    for (const int c : args.concurrency) {
      ours.push_back(measure(Kind::podworker, c, args, target, logs));
      print_row(ours.back(), table);
      if (args.python_handler) {
        ours_python.push_back(measure(Kind::podworker_python, c, args, target, logs));
        print_row(ours_python.back(), table);
      }
      if (args.sdk) {
        sdk.push_back(measure(Kind::sdk, c, args, target, logs));
        print_row(sdk.back(), table);
      }
      std::fflush(stdout);
    }
    // With --python the SDK comparison is against podworker running the same Python file.
    const std::vector<Row>& compared = args.python_handler ? ours_python : ours;
    if (args.python_handler) {
      // What the bridge adds per job over the C++ handler: the p50 difference (at C=1, one job's
      // round trip through the socket and the interpreter) and the difference in machine time
      // per job (1 / jobs/s: what it costs once the machine, not the latency, is the limit).
      auto& overhead = report.table("python_bridge");
      overhead.header("\n%-5s %12s %14s %12s %16s %18s\n", "C", "echo p50 ms", "python p50 ms",
                      "p50 +ms", "1/(jobs/s) +ms", "python/echo jobs/s");
      for (std::size_t i = 0; i < ours.size() && i < ours_python.size(); ++i) {
        const auto& a = ours[i].result;
        const auto& b = ours_python[i].result;
        const bool both = a.per_second() > 0 && b.per_second() > 0;
        overhead.row("%-5d %12.3f %14.3f %12.3f %16.3f %17.2fx\n", ours[i].concurrency,
                     a.percentile_ms(50), b.percentile_ms(50),
                     b.percentile_ms(50) - a.percentile_ms(50),
                     both ? 1000.0 / b.per_second() - 1000.0 / a.per_second() : 0.0,
                     both ? b.per_second() / a.per_second() : 0.0);
      }
    }
    if (!sdk.empty()) {
      auto& ratios = report.table("ratios");
      ratios.header("\n%-5s %16s %16s %14s %14s\n", "C", "jobs/s ratio", "p50 ratio",
                    "podworker p50", "SDK p50");
      for (std::size_t i = 0; i < compared.size() && i < sdk.size(); ++i) {
        const auto& a = compared[i].result;
        const auto& b = sdk[i].result;
        const double throughput = b.per_second() > 0 ? a.per_second() / b.per_second() : 0;
        const double latency = a.percentile_ms(50) > 0 ? b.percentile_ms(50) / a.percentile_ms(50) : 0;
        ratios.row("%-5d %15.0fx %15.0fx %11.3f ms %11.3f ms\n", compared[i].concurrency, throughput,
                   latency, a.percentile_ms(50), b.percentile_ms(50));
      }
    }
    server.stop();
    report.write(json);
    // Worker logs matter only when a row failed; a clean run leaves nothing behind.
    bool clean = true;
    for (const auto* rows : {&ours, &ours_python, &sdk}) {
      for (const auto& row : *rows) clean = clean && row.ran && row.result.errors == 0;
    }
    if (clean && args.log_dir.empty()) {
      std::error_code ignored;
      fs::remove_all(logs, ignored);
    } else {
      std::printf("worker logs kept in %s\n", logs.string().c_str());
    }
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_e2e: " << e.what() << "\n";
    return 1;
  }
}

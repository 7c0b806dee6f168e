// bench_endpoint: requests/s and p50/p99 latency of the local endpoint's /run and /status on
// loopback with N keep-alive connections (closed loop), against a server started in this process
// (rate limits off) or one given by --url. Prints a table; never part of the test suite.
//
//   bench_endpoint [--url http://127.0.0.1:PORT --api-key KEY] [--endpoint-id local]
//                  [--connections 1,8,64] [--seconds 2] [--client-threads 2] [--server-threads 2]
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "bench_table.h"
#include "http_load.h"
#include "podworker/endpoint/server.h"
#include "podworker/json.h"
#include "podworker/log.h"

namespace {

using podworker::bench::LoadOptions;
using podworker::bench::LoadResult;
using podworker::bench::Request;
using podworker::bench::Target;

struct Args {
  std::string url;
  std::string api_key;
  std::string endpoint_id = "local";
  std::vector<std::size_t> connections{1, 8, 64};
  double seconds = 2.0;
  unsigned client_threads = 2;
  unsigned server_threads = 2;
};

std::vector<std::size_t> parse_list(const std::string& text) {
  std::vector<std::size_t> values;
  std::stringstream in(text);
  for (std::string item; std::getline(in, item, ',');) {
    const long value = std::stol(item);
    if (value <= 0) throw std::invalid_argument("connection counts must be positive");
    values.push_back(static_cast<std::size_t>(value));
  }
  return values;
}

Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--url") args.url = value();
    else if (flag == "--api-key") args.api_key = value();
    else if (flag == "--endpoint-id") args.endpoint_id = value();
    else if (flag == "--connections") args.connections = parse_list(value());
    else if (flag == "--seconds") args.seconds = std::stod(value());
    else if (flag == "--client-threads") args.client_threads = static_cast<unsigned>(std::stoul(value()));
    else if (flag == "--server-threads") args.server_threads = static_cast<unsigned>(std::stoul(value()));
    else if (flag == "--help" || flag == "-h") {
      std::cout
          << "usage: bench_endpoint [--url http://HOST:PORT --api-key KEY] [--endpoint-id ID] "
             "[--json FILE]\n"
             "                      [--connections 1,8,64] [--seconds S] [--client-threads N]\n"
             "                      [--server-threads N]\n"
             "Without --url the endpoint runs in this process with rate limits off.\n";
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown flag " + flag);
    }
  }
  if (args.seconds <= 0) throw std::invalid_argument("--seconds must be positive");
  return args;
}

std::string submit_job(const Target& target, const std::string& prefix) {
  const auto answer = podworker::bench::request_once(
      target, {true, prefix + "/run", R"({"input":{"prompt":"status benchmark"}})"});
  if (answer.status != 200) throw std::runtime_error("setup /run answered " + std::to_string(answer.status) + ": " + answer.body);
  const auto doc = podworker::json::parse_object(answer.body);
  return podworker::json::get_string(doc, "id");
}

void purge(const Target& target, const std::string& prefix) {
  const auto answer = podworker::bench::request_once(target, {true, prefix + "/purge-queue", ""});
  if (answer.status != 200) std::cerr << "note: /purge-queue answered " << answer.status << "\n";
}

void print_row(podworker::bench::Table& table, const char* route, std::size_t connections,
               const LoadResult& r) {
  table.row("%-14s %6zu %10llu %11.0f %9.3f %9.3f %7llu\n", route, connections,
            static_cast<unsigned long long>(r.ok), r.per_second(), r.percentile_ms(50),
            r.percentile_ms(99), static_cast<unsigned long long>(r.errors));
  if (!r.first_error.empty()) std::printf("  first error: %s\n", r.first_error.c_str());
}

}  // namespace

int main(int argc, char** argv) {
  // The table is the output; the in-process endpoint's start-up notes would only interleave.
  podworker::log::set_level(podworker::log::Level::warn);
  try {
    const std::string json = podworker::bench::take_json_option(argc, argv);
    const Args args = parse_args(argc, argv);
    Target target;
    std::unique_ptr<podworker::endpoint::Server> server;
    std::string where;
    if (args.url.empty()) {
      podworker::endpoint::Options options;
      options.host = "127.0.0.1";
      options.port = 0;
      options.endpoint_ids = {args.endpoint_id};
      options.api_key = "bench-key";
      options.rate_limit = false;
      options.io_threads = args.server_threads;
      server = std::make_unique<podworker::endpoint::Server>(options);
      target.port = server->start();
      target.authorization = "Bearer " + options.api_key;
      where = "in-process endpoint, " + std::to_string(args.server_threads) + " I/O threads";
    } else {
      if (!podworker::bench::parse_origin(args.url, target)) throw std::invalid_argument("bad --url " + args.url);
      if (!args.api_key.empty()) target.authorization = "Bearer " + args.api_key;
      where = args.url;
    }
    const std::string prefix = "/v2/" + args.endpoint_id;

    LoadOptions load;
    load.threads = args.client_threads;
    load.measure = std::chrono::milliseconds(static_cast<long>(args.seconds * 1000));

    std::printf("podworker endpoint benchmark: %s; %u client threads; %.1f s per row; "
                "keep-alive connections, closed loop\n",
                where.c_str(), args.client_threads, args.seconds);
    podworker::bench::Report report("bench_endpoint");
    auto& table = report.table("routes");
    table.header("%-14s %6s %10s %11s %9s %9s %7s\n", "route", "conns", "requests", "req/s",
                 "p50 ms", "p99 ms", "errors");
    for (const std::size_t connections : args.connections) {
      load.connections = connections;
      const auto run = podworker::bench::run_load(target, load, [&](std::size_t, std::uint64_t) {
        return Request{true, prefix + "/run", R"({"input":{"prompt":"benchmark"}})"};
      });
      print_row(table, "POST /run", connections, run);
      purge(target, prefix);  // keep the queue from growing across rows
    }
    // After the last purge, so the job read by /status stays queued throughout.
    const std::string status_path = prefix + "/status/" + submit_job(target, prefix);
    for (const std::size_t connections : args.connections) {
      load.connections = connections;
      const auto status = podworker::bench::run_load(target, load, [&](std::size_t, std::uint64_t) {
        return Request{false, status_path, ""};
      });
      print_row(table, "GET /status", connections, status);
    }
    if (server) server->stop();
    report.write(json);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "bench_endpoint: " << e.what() << "\n";
    return 1;
  }
}

// bench_stream: how fast a stream reaches the client when the worker's endpoint is a network away.
// The worker posts through DelayProxy (RTT 0, 5, 20, 50 ms) to the local endpoint; a client on
// loopback submits a job with /run and follows it with /stream until it completes. Workloads:
//  - synthetic: a paced generator yielding one-character chunks at --rate per second (--chunks),
//  - textgen: SmolLM2 on the CPU, greedy, --tokens tokens (batch 1),
//  - runpod-sdk: the official runpod-python worker with the same paced generator (the anchor;
//    --sdk-chunks, fewer: it posts once per yield).
// Per row: chunks, posts (stream items the endpoint received), the stream's seconds (first to last
// chunk the client saw), chunks/s, tok/s (textgen), posts/s, mean chunks per post, time to the
// first chunk, and chunks/s as a ratio to the same workload's 0 ms row.
//
//   bench_stream [--rtt 0,5,20,50] [--chunks 20000] [--rate 20000] [--tokens 96] [--sdk-chunks 200]
//                [--no-textgen] [--no-sdk] [--python PATH] [--sdk-script PATH] [--log-dir DIR]
// Run from the repository root (textgen reads models/, or PODWORKER_MODEL).
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>
#include <thread>

#include "bench_table.h"
#include "child_process.h"
#include "delay_proxy.h"
#include "http_load.h"
#include "podworker/endpoint/server.h"
#include "podworker/handlers/textgen.h"
#include "podworker/json.h"
#include "podworker/log.h"
#include "podworker/worker.h"

#ifndef PODWORKER_VENV_PYTHON
#define PODWORKER_VENV_PYTHON ""
#endif
#ifndef PODWORKER_SDK_STREAM_SCRIPT
#define PODWORKER_SDK_STREAM_SCRIPT ""
#endif

namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using podworker::bench::Request;
using podworker::bench::Target;
namespace json = podworker::json;

struct Args {
  std::vector<int> rtt_ms{0, 5, 20, 50};
  int chunks = 20000;
  int rate = 20000;
  int tokens = 96;
  int sdk_chunks = 200;
  bool textgen = true;
  bool sdk = true;
  std::string python = PODWORKER_VENV_PYTHON;
  std::string sdk_script = PODWORKER_SDK_STREAM_SCRIPT;
  std::string log_dir;
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(flag + " needs a value");
      return argv[++i];
    };
    if (flag == "--rtt") {
      a.rtt_ms.clear();
      std::stringstream in(value());
      for (std::string item; std::getline(in, item, ',');) a.rtt_ms.push_back(std::stoi(item));
    } else if (flag == "--chunks")
      a.chunks = std::stoi(value());
    else if (flag == "--rate")
      a.rate = std::stoi(value());
    else if (flag == "--tokens")
      a.tokens = std::stoi(value());
    else if (flag == "--sdk-chunks")
      a.sdk_chunks = std::stoi(value());
    else if (flag == "--no-textgen")
      a.textgen = false;
    else if (flag == "--no-sdk")
      a.sdk = false;
    else if (flag == "--python")
      a.python = value();
    else if (flag == "--sdk-script")
      a.sdk_script = value();
    else if (flag == "--log-dir")
      a.log_dir = value();
    else if (flag == "--help" || flag == "-h") {
      std::cout << "usage: bench_stream [--rtt 0,5,20,50] [--chunks N] [--rate R] [--tokens N] "
                   "[--sdk-chunks N]\n"
                   "                    [--no-textgen] [--no-sdk] [--python PATH] [--sdk-script "
                   "PATH] [--log-dir DIR]\n"
                   "                    [--json FILE]\n";
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown flag " + flag);
    }
  }
  if (a.chunks < 1 || a.rate < 1 || a.tokens < 1 || a.sdk_chunks < 1)
    throw std::invalid_argument("counts must be positive");
  return a;
}

// Yields input.chunks one-character strings at input.rate per second, in 1 ms bursts.
class PacedHandler final : public podworker::Handler {
 public:
  bool streams() const override { return true; }
  podworker::Output execute(podworker::Job& job, podworker::Emitter& out) override {
    const auto chunks = json::get_int(job.input(), "chunks", 0);
    const auto rate = static_cast<double>(json::get_int(job.input(), "rate", 1));
    const auto start = Clock::now();
    for (long long i = 0; i < chunks && !job.cancelled(); ++i) {
      const auto due = start + std::chrono::duration_cast<Clock::duration>(
                                   std::chrono::duration<double>(i / rate));
      if (due - Clock::now() > 1ms) std::this_thread::sleep_until(due);
      out.yield("x");
    }
    return {};
  }
};

struct Row {
  std::string worker, workload;
  int rtt = 0;
  long long chunks = 0, posts = 0;
  double seconds = 0, first_ms = 0;
  bool ok = false;
  std::string note;
  double chunks_per_s() const { return seconds > 0 ? static_cast<double>(chunks) / seconds : 0; }
};

std::string endpoint_path(const std::string& ep, const std::string& rest) {
  return "/v2/" + ep + rest;
}

// Submits one job and follows its /stream to the end. `tokens`: count chunks as textgen tokens
// (the latest output_tokens) instead of characters.
Row follow(const Target& target, const std::string& ep, const std::string& input, bool tokens) {
  Row row;
  const auto submitted = Clock::now();
  const auto run =
      podworker::bench::request_once(target, Request{true, endpoint_path(ep, "/run"), input});
  const auto id_doc = json::parse_object(run.body);
  const std::string id = json::get_string(id_doc, "id");
  Clock::time_point first{}, last{};
  long long chunks_at_first = 0;
  const auto deadline =
      submitted + 180s;  // a worker that never takes the job must not hang the run
  for (;;) {
    if (Clock::now() > deadline) {
      row.note = "no result within 180 s";
      break;
    }
    const auto r = podworker::bench::request_once(
        target, Request{false, endpoint_path(ep, "/stream/" + id), ""},
        std::chrono::milliseconds(60000));
    const auto now = Clock::now();
    const auto doc = json::parse(r.body, json::kNoSizeLimit);
    const std::string status = json::get_string(doc, "status");
    const json::Value* items = json::find(doc, "stream");
    if (items != nullptr && items->IsArray() && items->Size() > 0) {
      for (const auto& item : items->GetArray()) {
        const json::Value& out = item["output"];
        if (tokens && out.IsObject() && out.HasMember("output_tokens"))
          row.chunks = out["output_tokens"].GetInt64();
        if (!tokens && out.IsString()) row.chunks += out.GetStringLength();
        ++row.posts;
      }
      if (first == Clock::time_point{}) {
        first = now;
        chunks_at_first = row.chunks;
      }
      last = now;
    }
    if (status == "COMPLETED") {
      row.ok = true;
      break;
    }
    if (status == "FAILED" || status == "CANCELLED" || status == "TIMED_OUT" || r.status >= 400) {
      row.note = status + " " + r.body.substr(0, 200);
      break;
    }
  }
  row.first_ms = std::chrono::duration<double, std::milli>(first - submitted).count();
  // The stream's own rate: the chunks after the first response, over the time they took.
  row.seconds = std::chrono::duration<double>(last - first).count();
  if (row.seconds > 0 && row.chunks > chunks_at_first) {
    row.seconds *=
        static_cast<double>(row.chunks) / static_cast<double>(row.chunks - chunks_at_first);
  }
  return row;
}

std::map<std::string, std::string> sdk_env(std::uint16_t port, const std::string& ep) {
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/v2/" + ep;
  // Production's templates carry a query (the SDK appends "&isStream=..." to them).
  return {{"RUNPOD_WEBHOOK_GET_JOB", base + "/job-take/$ID?gpu=bench"},
          {"RUNPOD_WEBHOOK_POST_OUTPUT", base + "/job-done/$RUNPOD_POD_ID/$ID?gpu=bench"},
          {"RUNPOD_WEBHOOK_POST_STREAM", base + "/job-stream/$RUNPOD_POD_ID/$ID?gpu=bench"},
          {"RUNPOD_WEBHOOK_PING", base + "/ping/$RUNPOD_POD_ID?gpu=bench"},
          {"RUNPOD_POD_ID", "bench-sdk"},
          {"RUNPOD_LOG_LEVEL", "ERROR"},
          {"RUNPOD_SKIP_GPU_CHECK", "true"},
          {"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true"},
          {"PYTHONUNBUFFERED", "1"}};
}

podworker::WorkerOptions worker_options(std::uint16_t port, const std::string& ep) {
  podworker::WorkerOptions o;
  const std::string base = "http://127.0.0.1:" + std::to_string(port) + "/v2/" + ep;
  o.take_url = base + "/job-take/$ID?gpu=bench";
  o.done_url = base + "/job-done/$RUNPOD_POD_ID/$ID?gpu=bench";
  o.stream_url = base + "/job-stream/$RUNPOD_POD_ID/$ID?gpu=bench";
  o.worker_id = "bench-" + ep;
  o.min_poll_interval = 0ms;
  return o;
}

// Runs `inputs` for each RTT through one proxy in front of the endpoint, the worker started once.
template <typename StartWorker>
void measure(std::vector<Row>& rows, const Args& args, const Target& target,
             const std::string& worker, const std::string& workload, const std::string& ep,
             const std::string& input, bool tokens, StartWorker&& start_worker) {
  podworker::test::DelayProxy proxy(target.port, 0us);
  auto running = start_worker(proxy.port());
  // Warm-up (process start, model load, connections), not measured.
  const Row warm = follow(target, ep, input, tokens);
  if (!warm.ok) {
    Row r;
    r.worker = worker;
    r.workload = workload;
    r.note = "warm-up failed: " + warm.note;
    rows.push_back(r);
    return;
  }
  for (const int rtt : args.rtt_ms) {
    proxy.set_one_way_delay(std::chrono::microseconds(rtt * 500));
    Row r = follow(target, ep, input, tokens);
    r.worker = worker;
    r.workload = workload;
    r.rtt = rtt;
    rows.push_back(r);
    std::fprintf(stderr, "  %s %s rtt %d ms: %.0f chunks/s\n", worker.c_str(), workload.c_str(),
                 rtt, r.chunks_per_s());
  }
}

void print(const std::vector<Row>& rows, podworker::bench::Table& table) {
  table.header("%-10s %-9s %4s %7s %6s %7s %10s %8s %8s %8s %8s %6s\n", "worker", "workload", "rtt",
               "chunks", "posts", "seconds", "chunks/s", "tok/s", "posts/s", "ch/post", "first_ms",
               "ratio");
  std::map<std::string, double> base;
  for (const auto& r : rows) {
    if (!r.ok) {
      std::printf("%-10s %-9s %4d  %s\n", r.worker.c_str(), r.workload.c_str(), r.rtt,
                  r.note.c_str());
      continue;
    }
    const std::string key = r.worker + "/" + r.workload;
    if (r.rtt == 0) base[key] = r.chunks_per_s();
    const double ratio = base.count(key) && base[key] > 0 ? r.chunks_per_s() / base[key] : 0;
    const double posts_s = r.seconds > 0 ? static_cast<double>(r.posts) / r.seconds : 0;
    char tok[16] = "-";
    if (r.workload == "textgen") std::snprintf(tok, sizeof tok, "%.1f", r.chunks_per_s());
    table.row("%-10s %-9s %4d %7lld %6lld %7.3f %10.1f %8s %8.1f %8.2f %8.1f %6.2f\n", r.worker,
              r.workload, r.rtt, r.chunks, r.posts, r.seconds, r.chunks_per_s(), tok, posts_s,
              r.posts ? static_cast<double>(r.chunks) / static_cast<double>(r.posts) : 0.0,
              r.first_ms, ratio);
  }
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string json = podworker::bench::take_json_option(argc, argv);
    const Args args = parse_args(argc, argv);
    podworker::log::set_level(podworker::log::Level::error);
    const fs::path logs = args.log_dir.empty() ? fs::temp_directory_path() /
                                                     ("bench_stream." + std::to_string(getpid()))
                                               : fs::path(args.log_dir);
    fs::create_directories(logs);

    podworker::endpoint::Options options;
    options.host = "127.0.0.1";
    options.port = 0;
    options.endpoint_ids = {"pw-syn", "pw-tg", "sdk-syn"};
    options.rate_limit = false;
    options.take_wait = 2000ms;
    options.stop_wait = 2000ms;
    podworker::endpoint::Server server(options);
    Target target;
    target.port = server.start();

    std::vector<Row> rows;
    const std::string synthetic = R"({"input":{"chunks":)" + std::to_string(args.chunks) +
                                  R"(,"rate":)" + std::to_string(args.rate) + "}}";
    // An in-process podworker worker on its own thread, stopped when the returned holder goes.
    struct InProcess {
      InProcess(podworker::WorkerOptions o, podworker::Handler& h)
          : worker(std::move(o), h), thread([this] { worker.run(); }) {}
      ~InProcess() {
        worker.stop();
        thread.join();
      }
      podworker::Worker worker;
      std::jthread thread;
    };
    PacedHandler paced;
    measure(rows, args, target, "podworker", "synthetic", "pw-syn", synthetic, false,
            [&](std::uint16_t port) {
              return std::make_unique<InProcess>(worker_options(port, "pw-syn"), paced);
            });
    if (args.textgen) {
      podworker::HandlerRegistry registry;
      podworker::handlers::register_textgen(registry);
      auto textgen = registry.create("textgen");
      const std::string input =
          R"({"input":{"messages":[{"role":"user","content":"Write a long story about a lighthouse keeper."}],"max_tokens":)" +
          std::to_string(args.tokens) + R"(,"temperature":0}})";
      measure(rows, args, target, "podworker", "textgen", "pw-tg", input, true,
              [&](std::uint16_t port) {
                return std::make_unique<InProcess>(worker_options(port, "pw-tg"), *textgen);
              });
    }
    if (args.sdk) {
      if (!fs::exists(args.python) || !fs::exists(args.sdk_script)) {
        std::fprintf(stderr, "runpod-sdk rows skipped: no %s (scripts/python-env.sh)\n",
                     args.python.c_str());
      } else {
        const std::string input = R"({"input":{"chunks":)" + std::to_string(args.sdk_chunks) +
                                  R"(,"rate":)" + std::to_string(args.rate) + "}}";
        measure(rows, args, target, "runpod-sdk", "synthetic", "sdk-syn", input, false,
                [&](std::uint16_t port) {
                  return std::make_unique<podworker::bench::ChildProcess>(
                      std::vector<std::string>{args.python, args.sdk_script},
                      sdk_env(port, "sdk-syn"), (logs / "sdk_stream_worker.log").string());
                });
      }
    }
    podworker::bench::Report report("bench_stream");
    print(rows, report.table("stream"));
    report.write(json);
    server.stop();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_stream: %s\n", e.what());
    return 1;
  }
}

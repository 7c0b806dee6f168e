// Prefill and decode throughput of the llm backends, at batch 1 and with 8 and 32 concurrent
// streams sharing each decode step, on the real SmolLM2-135M file (when present) and on a
// generated model of the same shapes. Prints a table.
//
// Usage: bench_textgen [--model PATH] [--backend cpu|cuda|all] [--threads N] [--prompt N] [--gen N]
//                      [--streams 1,8,32] [--no-generated] [--no-sampling]
//                      [--llama-bench PATH [--rounds N]] [--json FILE]
// PATH defaults to $PODWORKER_MODEL, then models/SmolLM2-135M-Instruct.Q4_1.gguf.
//
// It also measures the machine's memory read bandwidth and prints each CPU batch-1 decode as a
// share of the bound it sets (weight bytes read per token / bandwidth). --llama-bench runs
// llama.cpp's llama-bench (scripts/bench-llama-cpp.sh builds one) on the same file, thread count,
// prompt and generation lengths, alternating with our CPU batch-1 measurement round by round, so
// both see the same machine load; it prints every round, the medians and our/llama.cpp ratios.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench_table.h"
#include "llm/backend.h"
#include "llm/weights.h"
#include "model/gguf.h"
#include "model/test_model.h"
#include "process_stats.h"
#include "same_run.h"

namespace {

using namespace podworker;
using Clock = std::chrono::steady_clock;

struct Options {
  std::string model;
  std::string backend = "all";
  int threads = 0;
  int prompt = 64;
  int gen = 64;
  std::vector<int> streams = {1, 8, 32};
  bool generated = true;
  bool sampling = true;
  std::string llama_bench;  // llama-bench executable; empty: no comparison
  int rounds = 3;
};

struct Row {
  std::string model, backend;
  int streams;
  double prefill_tps, decode_tps;
};

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

Row measure(const std::string& label, std::shared_ptr<const llm::LlamaWeights> weights, llm::BackendKind kind,
            const Options& opt, int streams) {
  llm::BackendOptions bo;
  bo.max_sequences = streams;
  bo.max_context = opt.prompt + opt.gen + 8;
  bo.threads = opt.threads;
  auto backend = llm::make_backend(weights, kind, bo);
  const int vocab = weights->config().n_vocab;
  std::vector<std::int32_t> prompt(static_cast<std::size_t>(opt.prompt));
  for (int i = 0; i < opt.prompt; ++i) prompt[static_cast<std::size_t>(i)] = (i * 7919 + 13) % vocab;

  // Warm-up: one short prefill and decode, so first-touch page faults are not timed.
  {
    const llm::SeqId s = backend->alloc_sequence();
    backend->prefill_sample(s, std::span(prompt).first(8), {});
    backend->free_sequence(s);
  }
  std::vector<llm::SeqId> seqs;
  std::vector<std::int32_t> last;
  const auto t0 = Clock::now();
  for (int i = 0; i < streams; ++i) {
    seqs.push_back(backend->alloc_sequence());
    last.push_back(backend->prefill_sample(seqs.back(), prompt, {}));
  }
  const double prefill_s = seconds_since(t0);

  std::vector<llm::DecodeStep> steps(static_cast<std::size_t>(streams));
  std::vector<llm::SampleSpec> specs(static_cast<std::size_t>(streams));
  std::vector<std::int32_t> out(static_cast<std::size_t>(streams));
  const auto t1 = Clock::now();
  for (int g = 0; g < opt.gen; ++g) {
    for (int i = 0; i < streams; ++i) steps[static_cast<std::size_t>(i)] = {seqs[static_cast<std::size_t>(i)], last[static_cast<std::size_t>(i)]};
    backend->decode_sample(steps, specs, out);
    last = out;
  }
  const double decode_s = seconds_since(t1);
  return {label, std::string(backend->name()), streams, streams * opt.prompt / prefill_s,
          static_cast<double>(streams) * opt.gen / decode_s};
}

volatile std::int64_t bench_sink = 0;

// Host sampling cost per token over one row of logits, for the parameter sets the handler sees most.
void bench_sampling(const std::vector<float>& logits, const char* what, bench::Table& table) {
  struct Case {
    const char* name;
    llm::SamplingParams params;
  };
  const Case cases[] = {{"greedy", {0.0f, 0, 1.0f, 1}},
                        {"temperature 0.8", {0.8f, 0, 1.0f, 1}},
                        {"top_k 40", {0.8f, 40, 1.0f, 1}},
                        {"top_p 0.9", {0.8f, 0, 0.9f, 1}},
                        {"top_k 40 + top_p 0.9", {0.8f, 40, 0.9f, 1}}};
  std::printf("\nhost sampling over %zu logits (%s)\n", logits.size(), what);
  table.header("%-24s %14s %18s\n", "params", "us/token", "reference us/token");
  std::vector<std::uint64_t> scratch;
  for (const Case& c : cases) {
    const int reps = 200;
    std::int64_t sink = 0;  // uses the results, so the calls cannot be dropped
    auto t = Clock::now();
    for (int i = 0; i < reps; ++i) sink += llm::sample_token(logits, {c.params, static_cast<std::uint64_t>(i)}, scratch);
    const double fast_us = seconds_since(t) * 1e6 / reps;
    t = Clock::now();
    for (int i = 0; i < reps / 10; ++i) sink -= llm::sample_token_reference(logits, {c.params, static_cast<std::uint64_t>(i)});
    const double ref_us = seconds_since(t) * 1e6 / (reps / 10);
    table.row("%-24s %14.1f %18.1f\n", c.name, fast_us, ref_us);
    bench_sink = sink;
  }
}

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int run(int argc, char** argv) {
  const std::string json = bench::take_json_option(argc, argv);
  bench::Report report("bench_textgen");
  Options opt;
  const char* env_model = std::getenv("PODWORKER_MODEL");
  opt.model = env_model ? env_model : "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--model") opt.model = next();
    else if (a == "--backend") opt.backend = next();
    else if (a == "--threads") opt.threads = std::stoi(next());
    else if (a == "--prompt") opt.prompt = std::stoi(next());
    else if (a == "--gen") opt.gen = std::stoi(next());
    else if (a == "--streams") opt.streams = parse_list(next());
    else if (a == "--no-generated") opt.generated = false;
    else if (a == "--no-sampling") opt.sampling = false;
    else if (a == "--llama-bench") opt.llama_bench = next();
    else if (a == "--rounds") opt.rounds = std::max(1, std::stoi(next()));
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }

  std::vector<std::pair<std::string, std::shared_ptr<const llm::LlamaWeights>>> models;
  if (std::filesystem::exists(opt.model)) {
    auto file = std::make_shared<const model::GgufFile>(model::GgufFile::open(opt.model));
    models.emplace_back(std::filesystem::path(opt.model).stem().string(), llm::LlamaWeights::from_gguf(file));
  } else {
    std::printf("(real model %s not found: scripts/fetch-model.sh downloads it)\n", opt.model.c_str());
  }
  if (opt.generated) {
    const auto path = std::filesystem::temp_directory_path() / "podworker-bench-smollm2-shapes.gguf";
    model::write_test_model(path.string(), model::TestModelSpec::smollm2_135m());
    auto file = std::make_shared<const model::GgufFile>(model::GgufFile::open(path.string()));
    std::filesystem::remove(path);  // the mapping stays valid
    models.emplace_back("generated (same shapes)", llm::LlamaWeights::from_gguf(file));
  }

  std::vector<llm::BackendKind> kinds;
  if (opt.backend == "cpu" || opt.backend == "all") kinds.push_back(llm::BackendKind::cpu);
  if (opt.backend == "cuda" || (opt.backend == "all" && llm::cuda_backend_compiled() && llm::cuda_device_count() > 0)) {
    kinds.push_back(llm::BackendKind::cuda);
  }

  std::vector<Row> rows;
  for (const auto& [label, weights] : models) {
    for (const auto kind : kinds) {
      for (int s : opt.streams) rows.push_back(measure(label, weights, kind, opt, s));
    }
  }
  std::printf("\nprompt %d tokens, %d generated tokens per stream, greedy sampling\n", opt.prompt, opt.gen);
  auto& throughput = report.table("throughput");
  throughput.header("%-26s %-8s %8s %16s %18s %16s\n", "model", "backend", "streams",
                    "prefill tok/s", "decode tok/s (all)", "per stream");
  for (const Row& r : rows) {
    throughput.row("%-26s %-8s %8d %16.1f %18.1f %16.1f\n", r.model, r.backend, r.streams,
                   r.prefill_tps, r.decode_tps, r.decode_tps / r.streams);
  }
  // The bound of batch-1 decode: each token reads every weight once.
  const int threads = opt.threads > 0 ? opt.threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (std::find(kinds.begin(), kinds.end(), llm::BackendKind::cpu) != kinds.end()) {
    const double bw = bench::read_bandwidth_gbs(threads);
    std::printf("\nmemory read bandwidth, %d thread(s): %.1f GB/s (load %s)\n", threads, bw, bench::load_average().c_str());
    auto& bound_table = report.table("bandwidth_bound");
    bound_table.header("%-26s %14s %16s %14s %12s\n", "model", "weights MB/tok", "bound tok/s",
                       "decode tok/s", "% of bound");
    for (const auto& [label, weights] : models) {
      const double mb = static_cast<double>(bench::decode_weight_bytes(*weights)) / 1e6;
      for (const Row& r : rows) {
        if (r.model != label || r.backend != "cpu" || r.streams != 1) continue;
        const double bound = bw * 1e3 / mb;
        bound_table.row("%-26s %14.1f %16.1f %14.1f %11.1f%%\n", label, mb, bound, r.decode_tps,
                        100.0 * r.decode_tps / bound);
      }
    }
  }
  if (!opt.llama_bench.empty()) {
    if (models.empty() || !std::filesystem::exists(opt.model)) {
      std::fprintf(stderr, "bench_textgen: --llama-bench needs the model file\n");
      return 1;
    }
    std::printf("\nsame run, alternating round by round: ours (CPU, batch 1) and %s on %s, %d thread(s), "
                "prompt %d, gen %d\n", opt.llama_bench.c_str(), opt.model.c_str(), threads, opt.prompt, opt.gen);
    auto& same_run = report.table("same_run");
    same_run.header("%6s %6s %14s %14s %14s %14s %10s %10s\n", "round", "load", "ours pp t/s",
                    "llama pp t/s", "ours tg t/s", "llama tg t/s", "pp ratio", "tg ratio");
    Options one = opt;
    one.threads = threads;
    std::vector<double> ours_pp, ours_tg, llama_pp, llama_tg;
    for (int round = 1; round <= opt.rounds; ++round) {
      const std::string load = bench::load_average();
      const Row r = measure(models.front().first, models.front().second, llm::BackendKind::cpu, one, 1);
      const auto l = bench::run_llama_bench(opt.llama_bench, opt.model, threads, opt.prompt, opt.gen);
      if (!l) return 1;
      ours_pp.push_back(r.prefill_tps);
      ours_tg.push_back(r.decode_tps);
      llama_pp.push_back(l->prefill_tps);
      llama_tg.push_back(l->decode_tps);
      same_run.row("%6d %6s %14.1f %14.1f %14.1f %14.1f %9.2fx %9.2fx\n", round, load,
                   r.prefill_tps, l->prefill_tps, r.decode_tps, l->decode_tps,
                   r.prefill_tps / l->prefill_tps, r.decode_tps / l->decode_tps);
    }
    const auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
    };
    same_run.row("%6s %6s %14.1f %14.1f %14.1f %14.1f %9.2fx %9.2fx\n", "median",
                 bench::load_average(), median(ours_pp), median(llama_pp), median(ours_tg),
                 median(llama_tg), median(ours_pp) / median(llama_pp),
                 median(ours_tg) / median(llama_tg));
  }
  if (opt.sampling) {
    // Real next-token logits (the first model after the bench prompt), and a flat synthetic row:
    // logits normal with sd 3 need thousands of tokens for top_p 0.9 (a worst case).
    if (!models.empty()) {
      llm::BackendOptions bo;
      bo.max_sequences = 1;
      bo.threads = opt.threads;
      auto backend = llm::make_backend(models.front().second, llm::BackendKind::cpu, bo);
      std::vector<float> logits(static_cast<std::size_t>(backend->config().n_vocab));
      std::vector<std::int32_t> prompt(16);
      for (int i = 0; i < 16; ++i) prompt[static_cast<std::size_t>(i)] = (i * 7919 + 13) % backend->config().n_vocab;
      backend->prefill(backend->alloc_sequence(), prompt, logits);
      bench_sampling(logits, (models.front().first + ", after the bench prompt").c_str(),
                     report.table("sampling " + models.front().first));
    }
    std::vector<float> flat(49152);
    std::uint64_t x = 88172645463325252ull;
    for (auto& v : flat) {
      float sum = 0;  // sum of 12 uniforms - 6: roughly standard normal, without <random>
      for (int i = 0; i < 12; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += static_cast<float>(x >> 40) / 16777216.0f;
      }
      v = (sum - 6.0f) * 3.0f;
    }
    bench_sampling(flat, "synthetic, normal with sd 3", report.table("sampling synthetic"));
  }
  report.write(json);
  return 0;
}

int main(int argc, char** argv) {
  // A missing device, a bad model file or a bad flag ends the run with its message, not an abort.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_textgen: %s\n", e.what());
    return 1;
  }
}

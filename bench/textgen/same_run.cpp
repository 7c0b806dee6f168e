#include "same_run.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

#include "podworker/json.h"

namespace podworker::bench {

namespace {

// Sums 64-bit words: one load per word and an add the loads hide, so the time is the memory's.
std::uint64_t sum_words(const std::uint64_t* p, std::size_t n) {
  std::uint64_t a = 0, b = 0, c = 0, d = 0;
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    a += p[i];
    b += p[i + 1];
    c += p[i + 2];
    d += p[i + 3];
  }
  for (; i < n; ++i) a += p[i];
  return a + b + c + d;
}

volatile std::uint64_t sink = 0;

// Single quotes for /bin/sh, so paths with spaces or quotes pass through as one argument.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

struct PipeCloser {
  void operator()(std::FILE* f) const { pclose(f); }
};

}  // namespace

double read_bandwidth_gbs(int threads, std::size_t bytes, int passes) {
  threads = std::max(1, threads);
  const std::size_t words = bytes / sizeof(std::uint64_t);
  std::vector<std::uint64_t> buf(words);
  // Every page touched (and made distinct) before timing: first-touch faults are not bandwidth.
  for (std::size_t i = 0; i < words; ++i) buf[i] = i * 2654435761u;
  double best = 0;
  for (int pass = 0; pass < passes; ++pass) {
    std::vector<std::uint64_t> partial(static_cast<std::size_t>(threads));
    const auto t0 = std::chrono::steady_clock::now();
    {
      std::vector<std::jthread> pool;
      const std::size_t share = words / static_cast<std::size_t>(threads);
      for (int t = 0; t < threads; ++t) {
        pool.emplace_back([&, t] {
          const std::size_t begin = share * static_cast<std::size_t>(t);
          const std::size_t n = t == threads - 1 ? words - begin : share;
          partial[static_cast<std::size_t>(t)] = sum_words(buf.data() + begin, n);
        });
      }
    }
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    for (auto v : partial) sink = sink + v;
    best = std::max(best, static_cast<double>(words * sizeof(std::uint64_t)) / s / 1e9);
  }
  return best;
}

std::size_t decode_weight_bytes(const llm::LlamaWeights& w) {
  std::size_t total = w.output().bytes;
  for (const llm::LayerWeights& l : w.layers()) {
    for (const llm::TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) total += t->bytes;
  }
  return total;
}

std::optional<LlamaBenchResult> run_llama_bench(const std::string& llama_bench, const std::string& model, int threads,
                                                int prompt, int gen) {
  const std::string cmd = shell_quote(llama_bench) + " -m " + shell_quote(model) + " -t " + std::to_string(threads) +
                          " -p " + std::to_string(prompt) + " -n " + std::to_string(gen) + " -r 1 -o json 2>/dev/null";
  const std::unique_ptr<std::FILE, PipeCloser> pipe(popen(cmd.c_str(), "r"));
  if (!pipe) {
    std::fprintf(stderr, "bench_textgen: cannot start %s\n", llama_bench.c_str());
    return std::nullopt;
  }
  std::string out;
  char buf[4096];
  for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, pipe.get())) > 0;) out.append(buf, n);
  try {
    const json::Document doc = json::parse(out);
    if (!doc.IsArray()) throw std::runtime_error("not a JSON array");
    LlamaBenchResult r;
    for (const json::Value& test : doc.GetArray()) {
      if (!test.IsObject()) continue;
      const double n_prompt = json::get_number(test, "n_prompt", 0), n_gen = json::get_number(test, "n_gen", 0);
      const double ts = json::get_number(test, "avg_ts", 0);
      if (n_prompt > 0 && n_gen == 0) r.prefill_tps = ts;
      if (n_gen > 0 && n_prompt == 0) r.decode_tps = ts;
    }
    if (r.prefill_tps <= 0 || r.decode_tps <= 0) throw std::runtime_error("no pp and tg results");
    return r;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_textgen: could not read llama-bench's output (%s): %.200s\n", e.what(), out.c_str());
    return std::nullopt;
  }
}

}  // namespace podworker::bench

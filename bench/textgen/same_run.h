// What bench_textgen needs beyond its own timings: the machine's memory read bandwidth (the bound of
// batch-1 decode, which reads every weight once per token) and llama.cpp's llama-bench run on the
// same file and thread count, so the two are compared within one run on the same machine load.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "llm/weights.h"

namespace podworker::bench {

// Best-of-`passes` read bandwidth in GB/s of `threads` threads summing disjoint parts of a buffer of
// `bytes` (far larger than the caches).
double read_bandwidth_gbs(int threads, std::size_t bytes = std::size_t{512} << 20, int passes = 5);

// Bytes of weights one decode step reads: every layer matrix and the LM head (the embedding lookup
// reads one row, which is negligible).
std::size_t decode_weight_bytes(const llm::LlamaWeights& w);

// llama-bench's figures for one run: prompt processing and generation tokens/s.
struct LlamaBenchResult {
  double prefill_tps = 0;
  double decode_tps = 0;
};

// Runs `llama_bench -m model -t threads -p prompt -n gen -r 1 -o json` and reads its two tests'
// avg_ts. nullopt (with the reason on stderr) when it cannot run or its output is not understood.
std::optional<LlamaBenchResult> run_llama_bench(const std::string& llama_bench, const std::string& model, int threads,
                                                int prompt, int gen);

}  // namespace podworker::bench

// quantize: rewrites a GGUF model with its matrices in another ggml type, or in llama.cpp's Q4_K_M
// mix (model/quantize.h says which tensor gets which type).
//   quantize IN.gguf OUT.gguf TYPE [--threads N]
#include <charconv>
#include <cstdio>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "model/gguf.h"
#include "model/quantize.h"

namespace {

constexpr const char* kUsage =
    "usage: quantize IN.gguf OUT.gguf TYPE [--threads N] [--llama-fallback]\n"
    "  TYPE: F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q8_0 Q4_K Q5_K Q6_K, or Q4_K_M (llama.cpp's mix: Q4_K "
    "with\n"
    "  Q6_K for the LM head and some attn_v / ffn_down; rows not a multiple of 256 fall back to\n"
    "  Q5_0 / Q8_0 as llama.cpp does, except that a source already in a 32-block type no larger\n"
    "  than the fallback (Q4_0, Q4_1, Q5_0, Q8_0) is kept: requantizing it only adds error).\n"
    "  --llama-fallback: llama.cpp's fallback types whatever the source.\n"
    "  1-D tensors are copied unchanged.\n";

}  // namespace

int main(int argc, char** argv) {
  using namespace podworker;
  std::vector<std::string_view> args(argv + 1, argv + argc);
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<std::string_view> positional;
  bool llama_fallback = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--threads" && i + 1 < args.size()) {
      const std::string_view v = args[++i];
      const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), threads);
      if (ec != std::errc() || end != v.data() + v.size() || threads < 1 || threads > 1024) {
        std::fprintf(stderr, "quantize: --threads needs a number from 1 to 1024\n");
        return 2;
      }
    } else if (args[i] == "--llama-fallback") {
      llama_fallback = true;
    } else if (args[i] == "--help" || args[i] == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else {
      positional.push_back(args[i]);
    }
  }
  if (positional.size() != 3) {
    std::fputs(kUsage, stderr);
    return 2;
  }
  try {
    model::QuantizeTarget target = model::parse_quantize_target(positional[2]);
    target.keep_source_fallback = !llama_fallback;
    const model::GgufFile in = model::GgufFile::open(std::string(positional[0]));
    std::map<std::string, int> counts;
    for (const model::TensorChoice& c : model::plan_quantization(in, target)) {
      counts[std::string(kernels::type_name(c.from)) + " -> " +
             std::string(kernels::type_name(c.to))]++;
    }
    for (const auto& [what, n] : counts)
      std::fprintf(stderr, "quantize: %3d tensors %s\n", n, what.c_str());
    const model::GgufWriter out = model::requantize(in, target, threads);
    out.write(std::string(positional[1]));
    const model::GgufFile check = model::GgufFile::open(std::string(positional[1]));
    std::fprintf(stderr, "quantize: wrote %s (%s, %.1f MiB, was %.1f MiB)\n",
                 std::string(positional[1]).c_str(), target.name.c_str(),
                 static_cast<double>(check.file_size()) / (1 << 20),
                 static_cast<double>(in.file_size()) / (1 << 20));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "quantize: %s\n", e.what());
    return 1;
  }
  return 0;
}

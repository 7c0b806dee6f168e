// perplexity: the perplexity of a model on a text file, windows scored as llama-perplexity scores
// them (llm/perplexity.h). Progress goes to stderr; stdout's last line is "perplexity: X.XXXX".
//   perplexity --model PATH --file TEXT [--ctx N] [--threads N] [--backend cpu|cuda] [--parallel N]
#include <charconv>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "llm/backend.h"
#include "llm/perplexity.h"
#include "llm/weights.h"
#include "model/gguf.h"
#include "model/tokenizer.h"
#include "podworker/log.h"

namespace {

constexpr const char* kUsage =
    "usage: perplexity --model PATH --file TEXT [--ctx N] [--threads N] [--backend cpu|cuda] "
    "[--parallel N]\n"
    "  Cuts TEXT's tokens into windows of N tokens (default 512) and scores the second half of "
    "each\n"
    "  (positions N/2+1 .. N-1 predicted from everything before them in the window), as "
    "llama.cpp's\n"
    "  llama-perplexity does. --parallel: windows evaluated together (default 8).\n";

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

int parse_int(std::string_view flag, std::string_view v, int lo, int hi) {
  int out = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || end != v.data() + v.size() || out < lo || out > hi) {
    throw UsageError(std::string(flag) + " needs an integer from " + std::to_string(lo) + " to " +
                     std::to_string(hi));
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace podworker;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  std::string model_path, text_path, backend_name = "cpu";
  llm::PerplexityOptions options;
  int threads = 0;
  try {
    for (std::size_t i = 0; i < args.size(); ++i) {
      const std::string_view a = args[i];
      if (a == "--help" || a == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      }
      if (i + 1 >= args.size()) throw UsageError(std::string(a) + " needs a value");
      const std::string_view v = args[++i];
      if (a == "--model") {
        model_path = v;
      } else if (a == "--file") {
        text_path = v;
      } else if (a == "--ctx") {
        options.ctx = parse_int(a, v, 4, 1 << 20);
      } else if (a == "--threads") {
        threads = parse_int(a, v, 1, 1024);
      } else if (a == "--parallel") {
        options.parallel = parse_int(a, v, 1, 256);
      } else if (a == "--backend") {
        backend_name = v;
        if (backend_name != "cpu" && backend_name != "cuda")
          throw UsageError("--backend is cpu or cuda");
      } else {
        throw UsageError("unknown option " + std::string(a));
      }
    }
    if (model_path.empty() || text_path.empty())
      throw UsageError("--model and --file are required");
  } catch (const UsageError& e) {
    std::fprintf(stderr, "perplexity: %s\n%s", e.what(), kUsage);
    return 2;
  }
  try {
    std::ifstream in(text_path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + text_path);
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    auto file = std::make_shared<const model::GgufFile>(model::GgufFile::open(model_path));
    const model::Tokenizer tokenizer = model::Tokenizer::from_gguf(*file);
    // As llama-perplexity tokenizes: special-token text stays text.
    const std::vector<std::int32_t> tokens = tokenizer.encode(text, false);
    if (file->find("tokenizer.ggml.add_bos_token") != nullptr &&
        file->get_bool("tokenizer.ggml.add_bos_token")) {
      options.bos = tokenizer.bos_id();
    }
    const auto weights = llm::LlamaWeights::from_gguf(file);
    llm::BackendOptions bo;
    bo.threads = threads;
    bo.max_sequences = options.parallel;
    bo.max_context = options.ctx;
    auto backend = llm::make_backend(weights, llm::parse_backend_kind(backend_name), bo);
    std::fprintf(stderr,
                 "perplexity: %zu tokens, %zu windows of %d, scoring the last %d predictions of "
                 "each, %s backend\n",
                 tokens.size(), tokens.size() / static_cast<std::size_t>(options.ctx), options.ctx,
                 options.ctx - 1 - options.ctx / 2, std::string(backend->name()).c_str());
    const auto t0 = std::chrono::steady_clock::now();
    const llm::PerplexityResult r =
        llm::perplexity(*backend, tokens, options, [](int window, double ppl) {
          std::fprintf(stderr, "[%d]%.4f,", window, ppl);
          std::fflush(stderr);
        });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr,
                 "\nperplexity: %d windows, %d tokens scored in %.1f s; estimate %.4f +/- %.4f\n",
                 r.windows, r.scored, s, r.perplexity, r.uncertainty);
    std::printf("perplexity: %.4f\n", r.perplexity);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "perplexity: %s\n", e.what());
    return 1;
  }
  return 0;
}

#include "test_model_fixture.h"

#include <unistd.h>

#include <cstdlib>

#include "model/quantize.h"

namespace podworker::testing {

namespace {
std::filesystem::path run_dir() {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("podworker-test-textgen-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  return dir;
}
}  // namespace

std::string generated_model_path(const model::TestModelSpec& spec, const std::string& name) {
  const auto path = run_dir() / (name + ".gguf");
  if (!std::filesystem::exists(path)) model::write_test_model(path.string(), spec);
  return path.string();
}

std::string find_up(const std::string& path) {
  for (const char* prefix : {"", "../", "../../", "../../../"}) {
    if (std::filesystem::exists(std::string(prefix) + path)) return std::string(prefix) + path;
  }
  return {};
}

std::string real_model_path() {
  if (const char* env = std::getenv("PODWORKER_MODEL"); env && std::filesystem::exists(env))
    return env;
  return find_up("models/SmolLM2-135M-Instruct.Q4_1.gguf");
}

std::string requantized_real_model(bool keep_source_fallback) {
  const auto path = run_dir() / (keep_source_fallback ? "smollm2-q4_k_m.gguf"
                                                      : "smollm2-q4_k_m-llama-types.gguf");
  if (!std::filesystem::exists(path)) {
    model::QuantizeTarget target = model::parse_quantize_target("Q4_K_M");
    target.keep_source_fallback = keep_source_fallback;
    model::requantize(model::GgufFile::open(real_model_path()), target, 2).write(path.string());
  }
  return path.string();
}

std::shared_ptr<const llm::LlamaWeights> load_weights(const std::string& path) {
  auto file = std::make_shared<const model::GgufFile>(model::GgufFile::open(path));
  return llm::LlamaWeights::from_gguf(file);
}

model::TestModelSpec small_spec() {
  model::TestModelSpec s;
  s.hidden = 64;
  s.layers = 2;
  s.heads = 4;
  s.kv_heads = 2;
  s.ffn = 128;
  s.context = 256;
  s.seed = 7;
  return s;
}

namespace {
// Removes the temporary directory when the test binary exits.
struct Cleanup {
  ~Cleanup() {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::temp_directory_path() /
                                    ("podworker-test-textgen-" + std::to_string(::getpid())),
                                ec);
  }
} cleanup;
}  // namespace

}  // namespace podworker::testing

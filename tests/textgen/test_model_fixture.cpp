#include "test_model_fixture.h"

#include <unistd.h>

namespace podworker::testing {

std::string generated_model_path(const model::TestModelSpec& spec, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / ("podworker-test-textgen-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = dir / (name + ".gguf");
  if (!std::filesystem::exists(path)) model::write_test_model(path.string(), spec);
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
    std::filesystem::remove_all(std::filesystem::temp_directory_path() / ("podworker-test-textgen-" + std::to_string(::getpid())), ec);
  }
} cleanup;
}  // namespace

}  // namespace podworker::testing

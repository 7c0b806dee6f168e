#include "backend_fixture.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <filesystem>
#include <random>
#include <string>

#include "kernels/device.h"
#include "model/gguf.h"

namespace podworker::test {

std::shared_ptr<const llm::LlamaWeights> make_weights(const model::TestModelSpec& spec) {
  static std::atomic<int> counter{0};
  std::random_device rd;
  const auto path =
      std::filesystem::temp_directory_path() /
      ("podworker-llm-cuda-" + std::to_string(rd()) + "-" + std::to_string(counter++) + ".gguf");
  model::write_test_model(path.string(), spec);
  auto file = std::make_shared<const model::GgufFile>(model::GgufFile::open(path.string()));
  std::filesystem::remove(path);  // the mapping stays valid
  return llm::LlamaWeights::from_gguf(file);
}

bool have_gpu() {
  return kernels::cuda::device_count() > 0;
}

llm::BackendOptions options(int max_sequences, int max_context) {
  llm::BackendOptions o;
  o.max_sequences = max_sequences;
  o.max_context = max_context;
  o.threads = 2;
  return o;
}

double rel_l2(std::span<const float> got, std::span<const float> want) {
  REQUIRE(got.size() == want.size());
  double diff = 0, norm = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double d = static_cast<double>(got[i]) - want[i];
    diff += d * d;
    norm += static_cast<double>(want[i]) * want[i];
  }
  return std::sqrt(diff / std::max(norm, 1e-30));
}

}  // namespace podworker::test

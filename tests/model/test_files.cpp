#include "test_files.h"

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>

namespace podworker::model::testing {

TempFile::TempFile(const std::string& suffix) {
  static std::atomic<int> counter{0};
  path_ = (std::filesystem::temp_directory_path() /
           ("podworker-model-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + suffix))
              .string();
}

TempFile::~TempFile() {
  std::error_code ec;
  std::filesystem::remove(path_, ec);
}

void write_bytes(const std::string& path, const std::vector<std::byte>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

std::optional<std::string> real_model_path() {
  std::string path = PODWORKER_DEFAULT_MODEL;
  if (const char* env = std::getenv("PODWORKER_MODEL"); env != nullptr && *env != '\0') path = env;
  if (!std::filesystem::exists(path)) return std::nullopt;
  return path;
}

}  // namespace podworker::model::testing

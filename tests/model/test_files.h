// Helpers shared by the model tests: temporary files and the location of the real model.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace podworker::model::testing {

// A unique path under the system temporary directory, removed on destruction.
class TempFile {
 public:
  explicit TempFile(const std::string& suffix = ".gguf");
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

void write_bytes(const std::string& path, const std::vector<std::byte>& bytes);

// SmolLM2-135M-Instruct.Q4_1.gguf from $PODWORKER_MODEL or the repository's models/ folder;
// nullopt when absent (tests then skip with a message).
std::optional<std::string> real_model_path();

}  // namespace podworker::model::testing

// A read-only memory mapping of a whole file, released on destruction (move-only RAII handle).
#pragma once

#include <cstddef>
#include <span>
#include <string>

namespace podworker::model {

class MappedFile {
 public:
  // Throws std::system_error (with the path) when the file cannot be opened, stat'ed or mapped.
  explicit MappedFile(const std::string& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  std::span<const std::byte> bytes() const { return {data_, size_}; }

 private:
  void release() noexcept;
  const std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace podworker::model

// GGUF writer: the same layout the reader accepts, version 3 unless asked otherwise (tests write
// version 2 files, which differ only in the version field). Tensor data starts at the first
// multiple of the alignment after the tensor infos, and each tensor is padded to the alignment.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "model/gguf.h"

namespace podworker::model {

namespace {

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

struct VectorSink {
  std::vector<std::byte>& out;
  void write(const void* p, std::size_t n) {
    const auto* b = static_cast<const std::byte*>(p);
    out.insert(out.end(), b, b + n);
  }
};

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};

struct FileSink {
  std::FILE* f;
  const std::string& path;
  void write(const void* p, std::size_t n) {
    if (n != 0 && std::fwrite(p, 1, n, f) != n) throw GgufError("cannot write " + path);
  }
};

template <class T, class Sink>
void put(Sink& s, T v) {
  s.write(&v, sizeof v);
}

template <class Sink>
void put_string(Sink& s, const std::string& str) {
  put<std::uint64_t>(s, str.size());
  s.write(str.data(), str.size());
}

// Counts bytes instead of writing them: used to place the data section.
struct CountingSink {
  std::uint64_t n = 0;
  void write(const void*, std::size_t len) { n += len; }
};

template <class Sink>
void put_value(Sink& s, const MetaValue& v) {
  switch (v.type()) {
    case MetaType::uint8: put<std::uint8_t>(s, static_cast<std::uint8_t>(v.as_uint())); break;
    case MetaType::int8: put<std::int8_t>(s, static_cast<std::int8_t>(v.as_int())); break;
    case MetaType::uint16: put<std::uint16_t>(s, static_cast<std::uint16_t>(v.as_uint())); break;
    case MetaType::int16: put<std::int16_t>(s, static_cast<std::int16_t>(v.as_int())); break;
    case MetaType::uint32: put<std::uint32_t>(s, static_cast<std::uint32_t>(v.as_uint())); break;
    case MetaType::int32: put<std::int32_t>(s, static_cast<std::int32_t>(v.as_int())); break;
    case MetaType::uint64: put<std::uint64_t>(s, v.as_uint()); break;
    case MetaType::int64: put<std::int64_t>(s, v.as_int()); break;
    case MetaType::float32: put<float>(s, static_cast<float>(v.as_float())); break;
    case MetaType::float64: put<double>(s, v.as_float()); break;
    case MetaType::boolean: put<std::uint8_t>(s, v.as_bool() ? 1 : 0); break;
    case MetaType::string: put_string(s, v.as_string()); break;
    case MetaType::array:
      put<std::uint32_t>(s, static_cast<std::uint32_t>(v.array_type()));
      put<std::uint64_t>(s, v.size());
      for (const auto& item : v.items()) put_value(s, item);
      break;
  }
}

}  // namespace

void GgufWriter::set(std::string key, MetaValue value) {
  if (key == "general.alignment") {
    if (value.type() != MetaType::uint32) throw GgufError("general.alignment must be uint32");
    const auto a = value.as_uint();
    if (a == 0 || (a & (a - 1)) != 0) throw GgufError("general.alignment must be a power of two");
    alignment_ = a;
  }
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

void GgufWriter::add_tensor(std::string name, kernels::GgmlType type, std::vector<std::int64_t> shape,
                            std::span<const std::byte> data) {
  add_tensor(std::move(name), type, std::move(shape), std::vector<std::byte>(data.begin(), data.end()));
}

void GgufWriter::add_tensor(std::string name, kernels::GgmlType type, std::vector<std::int64_t> shape,
                            std::vector<std::byte>&& data) {
  for (const auto& t : tensors_) {
    if (t.name == name) throw GgufError("duplicate tensor name '" + name + "'");
  }
  const std::size_t expected = tensor_bytes(type, shape);
  if (data.size() != expected) {
    throw GgufError("tensor '" + name + "' has " + std::to_string(data.size()) + " bytes of data, its type and shape need " +
                    std::to_string(expected));
  }
  tensors_.push_back({std::move(name), type, std::move(shape), std::move(data)});
}

template <class Sink>
void GgufWriter::emit(Sink& sink) const {
  CountingSink counter;
  auto header = [&](auto& s) {
    s.write("GGUF", 4);
    put<std::uint32_t>(s, version_);
    put<std::uint64_t>(s, tensors_.size());
    put<std::uint64_t>(s, metadata_.size());
    for (const auto& [k, v] : metadata_) {
      put_string(s, k);
      put<std::uint32_t>(s, static_cast<std::uint32_t>(v.type()));
      put_value(s, v);
    }
    std::uint64_t offset = 0;
    for (const auto& t : tensors_) {
      put_string(s, t.name);
      put<std::uint32_t>(s, static_cast<std::uint32_t>(t.shape.size()));
      for (auto d : t.shape) put<std::uint64_t>(s, static_cast<std::uint64_t>(d));
      put<std::uint32_t>(s, static_cast<std::uint32_t>(t.type));
      put<std::uint64_t>(s, offset);
      offset = align_up(offset + t.data.size(), alignment_);
    }
  };
  header(counter);
  header(sink);
  const std::vector<std::byte> zeros(alignment_);
  sink.write(zeros.data(), align_up(counter.n, alignment_) - counter.n);
  for (const auto& t : tensors_) {
    sink.write(t.data.data(), t.data.size());
    sink.write(zeros.data(), align_up(t.data.size(), alignment_) - t.data.size());
  }
}

std::vector<std::byte> GgufWriter::to_bytes() const {
  std::vector<std::byte> out;
  VectorSink sink{out};
  emit(sink);
  return out;
}

void GgufWriter::write(const std::string& path) const {
  std::unique_ptr<std::FILE, FileCloser> f(std::fopen(path.c_str(), "wb"));
  if (!f) throw GgufError("cannot create " + path + ": " + std::strerror(errno));
  FileSink sink{f.get(), path};
  emit(sink);
  if (std::fclose(f.release()) != 0) throw GgufError("cannot write " + path);
}

}  // namespace podworker::model

// GGUF reader. Layout (versions 2 and 3 are identical; version 1 used 32-bit counts and is
// refused): magic "GGUF", uint32 version, uint64 tensor count, uint64 metadata count, the metadata
// key/value pairs, the tensor infos (name, uint32 n_dims, uint64 dims[], uint32 type, uint64
// offset), then the data section at the next multiple of `general.alignment` (default 32).
// Every count and length is checked against the bytes left before anything is allocated, so a
// corrupt header cannot make the reader reserve gigabytes or read past the end.
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <system_error>
#include <unordered_set>

#include "model/gguf.h"
#include "model/mapped_file.h"

namespace podworker::model {

using kernels::GgmlType;

struct GgufFile::Storage {
  std::optional<MappedFile> mapping;
  std::vector<std::byte> buffer;
  std::span<const std::byte> bytes;
};

GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

namespace {

constexpr std::uint32_t kMinVersion = 2;
constexpr std::uint32_t kMaxVersion = 3;

// Names of ggml types this build cannot compute with, so an error can say what the file holds.
std::string ggml_type_label(std::uint32_t raw) {
  if (kernels::is_supported(raw)) return std::string(kernels::type_name(static_cast<GgmlType>(raw)));
  static constexpr std::pair<std::uint32_t, const char*> kKnown[] = {
      {6, "Q5_0"},   {7, "Q5_1"},    {10, "Q2_K"},  {11, "Q3_K"},  {12, "Q4_K"},   {13, "Q5_K"},
      {15, "Q8_K"},  {16, "IQ2_XXS"}, {17, "IQ2_XS"}, {18, "IQ3_XXS"}, {19, "IQ1_S"}, {20, "IQ4_NL"},
      {21, "IQ3_S"}, {22, "IQ2_S"},  {23, "IQ4_XS"}, {24, "I8"},    {25, "I16"},    {26, "I32"},
      {27, "I64"},   {28, "F64"},    {29, "IQ1_M"}, {34, "TQ1_0"}, {35, "TQ2_0"}};
  for (const auto& [n, name] : kKnown) {
    if (n == raw) return name;
  }
  return "unknown";
}

// Minimum encoded size of one value of a type: used to cap counts before allocating.
std::uint64_t min_encoded_size(MetaType t) {
  switch (t) {
    case MetaType::uint8:
    case MetaType::int8:
    case MetaType::boolean: return 1;
    case MetaType::uint16:
    case MetaType::int16: return 2;
    case MetaType::uint32:
    case MetaType::int32:
    case MetaType::float32: return 4;
    case MetaType::uint64:
    case MetaType::int64:
    case MetaType::float64:
    case MetaType::string: return 8;
    case MetaType::array: return 12;
  }
  return 1;
}

class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& source) : bytes_(bytes), source_(source) {}

  std::size_t pos() const { return pos_; }
  std::size_t left() const { return bytes_.size() - pos_; }

  [[noreturn]] void fail(const std::string& what) const {
    throw GgufError(source_ + ": " + what + " (at byte " + std::to_string(pos_) + " of " +
                    std::to_string(bytes_.size()) + ")");
  }

  void need(std::uint64_t n, const char* what) const {
    if (n > left()) fail(std::string("file truncated while reading ") + what);
  }

  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what, std::uint64_t max_bytes) {
    const auto n = read<std::uint64_t>(what);
    if (n > max_bytes) fail(std::string(what) + " length " + std::to_string(n) + " exceeds the limit");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), static_cast<std::size_t>(n));
    pos_ += static_cast<std::size_t>(n);
    return s;
  }

  // Checks that `count` values of at least `min_size` bytes each can fit in what is left.
  void check_count(std::uint64_t count, std::uint64_t min_size, const char* what) const {
    if (count > left() / min_size) {
      fail(std::string(what) + " " + std::to_string(count) + " is larger than the file allows");
    }
  }

 private:
  std::span<const std::byte> bytes_;
  const std::string& source_;
  std::size_t pos_ = 0;
};

MetaType read_meta_type(Cursor& c, const char* what) {
  const auto raw = c.read<std::uint32_t>(what);
  if (raw > static_cast<std::uint32_t>(MetaType::float64)) {
    c.fail("unknown metadata value type " + std::to_string(raw));
  }
  return static_cast<MetaType>(raw);
}

MetaValue read_value(Cursor& c, MetaType type, const GgufLimits& limits, std::uint32_t depth) {
  switch (type) {
    case MetaType::uint8: return MetaValue::u8(c.read<std::uint8_t>("uint8 value"));
    case MetaType::int8: return MetaValue::i8(c.read<std::int8_t>("int8 value"));
    case MetaType::uint16: return MetaValue::u16(c.read<std::uint16_t>("uint16 value"));
    case MetaType::int16: return MetaValue::i16(c.read<std::int16_t>("int16 value"));
    case MetaType::uint32: return MetaValue::u32(c.read<std::uint32_t>("uint32 value"));
    case MetaType::int32: return MetaValue::i32(c.read<std::int32_t>("int32 value"));
    case MetaType::uint64: return MetaValue::u64(c.read<std::uint64_t>("uint64 value"));
    case MetaType::int64: return MetaValue::i64(c.read<std::int64_t>("int64 value"));
    case MetaType::float32: return MetaValue::f32(c.read<float>("float32 value"));
    case MetaType::float64: return MetaValue::f64(c.read<double>("float64 value"));
    case MetaType::boolean: {
      const auto b = c.read<std::uint8_t>("bool value");
      if (b > 1) c.fail("bool value " + std::to_string(b) + " is neither 0 nor 1");
      return MetaValue::boolean(b != 0);
    }
    case MetaType::string: return MetaValue::string(c.read_string("string value", limits.max_string_bytes));
    case MetaType::array: {
      if (depth >= limits.max_array_depth) c.fail("arrays nested too deeply");
      const MetaType element = read_meta_type(c, "array element type");
      const auto count = c.read<std::uint64_t>("array length");
      c.check_count(count, min_encoded_size(element), "array length");
      std::vector<MetaValue> items;
      items.reserve(static_cast<std::size_t>(count));
      for (std::uint64_t i = 0; i < count; ++i) items.push_back(read_value(c, element, limits, depth + 1));
      return MetaValue::array(element, std::move(items));
    }
  }
  c.fail("unknown metadata value type");
}

std::uint64_t align_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

}  // namespace

std::int64_t TensorInfo::elements() const {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

std::size_t TensorInfo::row_bytes() const {
  const std::int64_t row[1] = {row_length()};
  return tensor_bytes(type, row);
}

std::size_t tensor_bytes(GgmlType type, std::span<const std::int64_t> shape) {
  if (!kernels::is_supported(static_cast<std::uint32_t>(type))) {
    throw GgufError("unsupported ggml type " + std::to_string(static_cast<std::uint32_t>(type)));
  }
  std::int64_t elements = 1;
  for (auto d : shape) {
    if (d < 0) throw GgufError("negative tensor dimension " + std::to_string(d));
    if (d != 0 && elements > std::numeric_limits<std::int64_t>::max() / d) {
      throw GgufError("tensor element count overflows");
    }
    elements *= d;
  }
  const std::int64_t block = kernels::block_elements(type);
  const std::int64_t row = shape.empty() ? 1 : shape[0];
  if (row % block != 0) {
    throw GgufError("row length " + std::to_string(row) + " is not a multiple of the " +
                    std::string(kernels::type_name(type)) + " block size " + std::to_string(block));
  }
  const auto blocks = static_cast<std::uint64_t>(elements / block);
  const auto per_block = static_cast<std::uint64_t>(kernels::block_bytes(type));
  if (blocks > std::numeric_limits<std::size_t>::max() / per_block) throw GgufError("tensor size overflows");
  return static_cast<std::size_t>(blocks * per_block);
}

GgufFile GgufFile::open(const std::string& path, const GgufLimits& limits) {
  GgufFile f;
  f.storage_ = std::make_unique<Storage>();
  try {
    f.storage_->mapping.emplace(path);
  } catch (const std::system_error& e) {
    throw GgufError(e.what());
  }
  f.storage_->bytes = f.storage_->mapping->bytes();
  f.source_ = path;
  f.parse(limits);
  return f;
}

GgufFile GgufFile::from_bytes(std::vector<std::byte> bytes, const GgufLimits& limits) {
  GgufFile f;
  f.storage_ = std::make_unique<Storage>();
  f.storage_->buffer = std::move(bytes);
  f.storage_->bytes = f.storage_->buffer;
  f.source_ = "<memory>";
  f.parse(limits);
  return f;
}

std::size_t GgufFile::file_size() const { return storage_ ? storage_->bytes.size() : 0; }

void GgufFile::parse(const GgufLimits& limits) {
  const auto bytes = storage_->bytes;
  Cursor c(bytes, source_);

  const auto magic = c.read<std::array<char, 4>>("magic");
  if (std::memcmp(magic.data(), "GGUF", 4) != 0) c.fail("not a GGUF file (bad magic)");
  version_ = c.read<std::uint32_t>("version");
  if (version_ < kMinVersion || version_ > kMaxVersion) {
    // A big-endian file shows its version byte-swapped (e.g. 0x03000000).
    const bool swapped = version_ > 0xFFFF && (version_ & 0xFFFF) == 0;
    c.fail("unsupported GGUF version " + std::to_string(version_) +
           (swapped ? " (big-endian file?)" : "") + "; supported: 2 and 3");
  }
  const auto tensor_count = c.read<std::uint64_t>("tensor count");
  const auto kv_count = c.read<std::uint64_t>("metadata count");
  // A key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a tensor info at least
  // 8 (name length) + 4 (n_dims) + 4 (type) + 8 (offset).
  c.check_count(kv_count, 13, "metadata count");

  std::unordered_set<std::string> keys;
  metadata_.reserve(static_cast<std::size_t>(kv_count));
  for (std::uint64_t i = 0; i < kv_count; ++i) {
    std::string key = c.read_string("metadata key", limits.max_string_bytes);
    if (!keys.insert(key).second) c.fail("duplicate metadata key '" + key + "'");
    const MetaType type = read_meta_type(c, "metadata value type");
    try {
      MetaValue value = read_value(c, type, limits, 0);
      metadata_.emplace_back(std::move(key), std::move(value));
    } catch (const GgufError& e) {
      throw GgufError(std::string(e.what()) + " [metadata key '" + key + "']");
    }
  }

  alignment_ = 32;
  if (const MetaValue* a = find("general.alignment")) {
    if (a->type() != MetaType::uint32) c.fail("general.alignment must be uint32");
    const auto v = a->as_uint();
    if (v == 0 || (v & (v - 1)) != 0) c.fail("general.alignment " + std::to_string(v) + " is not a power of two");
    alignment_ = v;
  }

  c.check_count(tensor_count, 24, "tensor count");
  tensors_.reserve(static_cast<std::size_t>(tensor_count));
  std::unordered_set<std::string> names;
  for (std::uint64_t i = 0; i < tensor_count; ++i) {
    TensorInfo t;
    t.name = c.read_string("tensor name", limits.max_string_bytes);
    if (!names.insert(t.name).second) c.fail("duplicate tensor name '" + t.name + "'");
    const auto n_dims = c.read<std::uint32_t>("tensor dimension count");
    if (n_dims > limits.max_dimensions) {
      c.fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions (at most " +
             std::to_string(limits.max_dimensions) + ")");
    }
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const auto dim = c.read<std::uint64_t>("tensor dimension");
      if (dim > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        c.fail("tensor '" + t.name + "' has an invalid dimension " + std::to_string(dim));
      }
      t.shape.push_back(static_cast<std::int64_t>(dim));
    }
    const auto raw_type = c.read<std::uint32_t>("tensor type");
    if (!kernels::is_supported(raw_type)) {
      c.fail("tensor '" + t.name + "' has unsupported ggml type " + std::to_string(raw_type) + " (" +
             ggml_type_label(raw_type) + "); supported: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q8_0, Q8_1, Q4_K, Q5_K, Q6_K");
    }
    t.type = static_cast<GgmlType>(raw_type);
    t.offset = c.read<std::uint64_t>("tensor offset");
    try {
      t.bytes = tensor_bytes(t.type, t.shape);
    } catch (const GgufError& e) {
      c.fail("tensor '" + t.name + "': " + e.what());
    }
    tensors_.push_back(std::move(t));
  }

  data_offset_ = align_up(c.pos(), alignment_);
  for (auto& t : tensors_) {
    if (t.offset % alignment_ != 0) {
      throw GgufError(source_ + ": tensor '" + t.name + "' data offset " + std::to_string(t.offset) +
                      " is not a multiple of the alignment " + std::to_string(alignment_));
    }
    const std::uint64_t size = bytes.size();
    if (data_offset_ > size || t.offset > size - data_offset_ || t.bytes > size - data_offset_ - t.offset) {
      throw GgufError(source_ + ": tensor '" + t.name + "' data (" + std::to_string(t.bytes) +
                      " bytes at data offset " + std::to_string(t.offset) + ") lies beyond the end of the file (" +
                      std::to_string(size) + " bytes, data section at " + std::to_string(data_offset_) + ")");
    }
    t.data = bytes.data() + data_offset_ + t.offset;
  }
}

const MetaValue* GgufFile::find(std::string_view key) const {
  for (const auto& [k, v] : metadata_) {
    if (k == key) return &v;
  }
  return nullptr;
}

const MetaValue& GgufFile::at(std::string_view key) const {
  if (const MetaValue* v = find(key)) return *v;
  throw GgufError(source_ + ": metadata key '" + std::string(key) + "' is missing");
}

namespace {

// Runs a conversion and names the key in any error it raises.
template <class F>
auto with_key(const std::string& source, std::string_view key, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const GgufError& e) {
    throw GgufError(source + ": metadata key '" + std::string(key) + "': " + e.what());
  }
}

}  // namespace

std::string GgufFile::get_string(std::string_view key) const {
  const MetaValue& v = at(key);
  return with_key(source_, key, [&] { return v.as_string(); });
}
std::int64_t GgufFile::get_int(std::string_view key) const {
  const MetaValue& v = at(key);
  return with_key(source_, key, [&] { return v.as_int(); });
}
std::uint64_t GgufFile::get_uint(std::string_view key) const {
  const MetaValue& v = at(key);
  return with_key(source_, key, [&] { return v.as_uint(); });
}
double GgufFile::get_float(std::string_view key) const {
  const MetaValue& v = at(key);
  return with_key(source_, key, [&] { return v.as_float(); });
}
bool GgufFile::get_bool(std::string_view key) const {
  const MetaValue& v = at(key);
  return with_key(source_, key, [&] { return v.as_bool(); });
}
std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const MetaValue& v = at(key);
  return with_key(source_, key, [&] {
    std::vector<std::string> out;
    out.reserve(v.size());
    for (const auto& item : v.items()) out.push_back(item.as_string());
    return out;
  });
}
std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const MetaValue& v = at(key);
  return with_key(source_, key, [&] {
    std::vector<float> out;
    out.reserve(v.size());
    for (const auto& item : v.items()) out.push_back(static_cast<float>(item.as_float()));
    return out;
  });
}
std::vector<std::int32_t> GgufFile::get_int_array(std::string_view key) const {
  const MetaValue& v = at(key);
  return with_key(source_, key, [&] {
    std::vector<std::int32_t> out;
    out.reserve(v.size());
    for (const auto& item : v.items()) {
      const auto i = item.as_int();
      if (i < std::numeric_limits<std::int32_t>::min() || i > std::numeric_limits<std::int32_t>::max()) {
        throw GgufError("array element " + std::to_string(i) + " does not fit in int32");
      }
      out.push_back(static_cast<std::int32_t>(i));
    }
    return out;
  });
}
std::int64_t GgufFile::get_int_or(std::string_view key, std::int64_t fallback) const {
  return find(key) ? get_int(key) : fallback;
}
double GgufFile::get_float_or(std::string_view key, double fallback) const {
  return find(key) ? get_float(key) : fallback;
}
std::string GgufFile::get_string_or(std::string_view key, std::string fallback) const {
  return find(key) ? get_string(key) : std::move(fallback);
}

std::string GgufFile::architecture() const { return get_string("general.architecture"); }

void GgufFile::require_architecture(std::string_view expected) const {
  const std::string arch = architecture();
  if (arch != expected) {
    throw GgufError(source_ + ": model architecture is '" + arch + "', expected '" + std::string(expected) + "'");
  }
}

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const TensorInfo& GgufFile::tensor(std::string_view name) const {
  if (const TensorInfo* t = find_tensor(name)) return *t;
  throw GgufError(source_ + ": tensor '" + std::string(name) + "' is missing");
}

}  // namespace podworker::model

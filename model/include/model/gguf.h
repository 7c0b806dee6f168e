// GGUF files: a validating, memory-mapping reader (versions 2 and 3) and a writer (version 3).
//
// The reader checks every count, length, offset and type against the file before it trusts it, so a
// truncated, corrupt or hostile file yields a GgufError naming what is wrong, never a crash. Tensor
// data is not copied: TensorInfo::data points into the read-only mapping, which lives as long as
// the GgufFile.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "kernels/ggml_types.h"

namespace podworker::model {

class GgufError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Metadata value types, numbered as the GGUF specification numbers them.
enum class MetaType : std::uint32_t {
  uint8 = 0,
  int8 = 1,
  uint16 = 2,
  int16 = 3,
  uint32 = 4,
  int32 = 5,
  float32 = 6,
  boolean = 7,
  string = 8,
  array = 9,
  uint64 = 10,
  int64 = 11,
  float64 = 12,
};
std::string_view meta_type_name(MetaType t);

// One metadata value of any GGUF type, arrays (including arrays of arrays) included. The value keeps
// its exact GGUF type so a writer round trip reproduces the file's types.
class MetaValue {
 public:
  MetaValue() = default;  // uint8 0

  static MetaValue u8(std::uint8_t v);
  static MetaValue i8(std::int8_t v);
  static MetaValue u16(std::uint16_t v);
  static MetaValue i16(std::int16_t v);
  static MetaValue u32(std::uint32_t v);
  static MetaValue i32(std::int32_t v);
  static MetaValue u64(std::uint64_t v);
  static MetaValue i64(std::int64_t v);
  static MetaValue f32(float v);
  static MetaValue f64(double v);
  static MetaValue boolean(bool v);
  static MetaValue string(std::string v);
  // Every element must have type `element_type` (checked; throws GgufError).
  static MetaValue array(MetaType element_type, std::vector<MetaValue> items);
  static MetaValue string_array(std::span<const std::string> items);
  static MetaValue f32_array(std::span<const float> items);
  static MetaValue i32_array(std::span<const std::int32_t> items);

  MetaType type() const { return type_; }
  bool is_integer() const;  // any of the eight integer types
  bool is_float() const { return type_ == MetaType::float32 || type_ == MetaType::float64; }
  bool is_bool() const { return type_ == MetaType::boolean; }
  bool is_string() const { return type_ == MetaType::string; }
  bool is_array() const { return type_ == MetaType::array; }

  // Conversions throw GgufError when the type does not fit (a string read as a number, a negative
  // value read as unsigned, a uint64 above INT64_MAX read as signed).
  std::int64_t as_int() const;
  std::uint64_t as_uint() const;
  double as_float() const;  // float types and integers
  bool as_bool() const;
  const std::string& as_string() const;

  // Arrays.
  MetaType array_type() const;  // throws unless is_array()
  std::size_t size() const;     // number of elements; throws unless is_array()
  const MetaValue& operator[](std::size_t i) const;  // throws GgufError when out of range
  const std::vector<MetaValue>& items() const;      // throws unless is_array()

  // Short human-readable form: numbers, quoted strings, arrays abbreviated after `max_items`.
  std::string describe(std::size_t max_items = 8) const;

  friend bool operator==(const MetaValue& a, const MetaValue& b) = default;

 private:
  MetaType type_ = MetaType::uint8;
  MetaType array_type_ = MetaType::uint8;
  // Integers are stored widened (signed types in int64, unsigned in uint64); type_ keeps the width.
  using Value = std::variant<std::uint64_t, std::int64_t, double, bool, std::string, std::vector<MetaValue>>;
  Value value_{std::uint64_t{0}};

  static MetaValue make(MetaType type, Value value);  // what every scalar factory shares
};

struct TensorInfo {
  std::string name;
  kernels::GgmlType type = kernels::GgmlType::f32;
  std::vector<std::int64_t> shape;  // ggml order: shape[0] is the innermost (row length)
  std::uint64_t offset = 0;         // from the start of the data section
  std::size_t bytes = 0;
  const std::byte* data = nullptr;  // into the file's mapping

  std::int64_t elements() const;
  std::int64_t row_length() const { return shape.empty() ? 1 : shape[0]; }
  std::int64_t rows() const { return row_length() == 0 ? 0 : elements() / row_length(); }
  std::size_t row_bytes() const;
};

// Bytes a tensor of this type and shape takes; throws GgufError when the row length is not a
// multiple of the type's block size, a dimension is negative, or the size overflows.
std::size_t tensor_bytes(kernels::GgmlType type, std::span<const std::int64_t> shape);

// Limits applied while reading; the defaults admit any real model file.
struct GgufLimits {
  std::uint64_t max_string_bytes = 64ull << 20;
  std::uint32_t max_dimensions = 4;
  std::uint32_t max_array_depth = 4;
};

class GgufFile {
 public:
  // Maps `path` read-only and validates it completely; throws GgufError naming the problem.
  static GgufFile open(const std::string& path, const GgufLimits& limits = {});
  // Parses a copy held in memory (tests, files received over the network).
  static GgufFile from_bytes(std::vector<std::byte> bytes, const GgufLimits& limits = {});

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  std::uint32_t version() const { return version_; }
  std::uint64_t alignment() const { return alignment_; }
  std::uint64_t data_offset() const { return data_offset_; }  // file offset of the data section
  std::size_t file_size() const;

  const std::vector<std::pair<std::string, MetaValue>>& metadata() const { return metadata_; }
  const MetaValue* find(std::string_view key) const;
  const MetaValue& at(std::string_view key) const;  // throws GgufError naming the key

  // Typed getters: throw GgufError naming the key when it is missing or has the wrong type.
  std::string get_string(std::string_view key) const;
  std::int64_t get_int(std::string_view key) const;
  std::uint64_t get_uint(std::string_view key) const;
  double get_float(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;
  std::vector<std::int32_t> get_int_array(std::string_view key) const;
  // With a default for optional keys (a present key of the wrong type still throws).
  std::int64_t get_int_or(std::string_view key, std::int64_t fallback) const;
  double get_float_or(std::string_view key, double fallback) const;
  std::string get_string_or(std::string_view key, std::string fallback) const;

  // `general.architecture`; require_architecture throws GgufError unless it equals `expected`.
  std::string architecture() const;
  void require_architecture(std::string_view expected) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws GgufError naming the tensor

 private:
  struct Storage;
  GgufFile() = default;
  void parse(const GgufLimits& limits);

  std::unique_ptr<Storage> storage_;
  std::string source_;  // path or "<memory>", for error messages
  std::uint32_t version_ = 0;
  std::uint64_t alignment_ = 32;
  std::uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, MetaValue>> metadata_;
  std::vector<TensorInfo> tensors_;
};

// Builds a GGUF file: metadata of every type, tensors with their data, the data section aligned.
class GgufWriter {
 public:
  explicit GgufWriter(std::uint32_t version = 3) : version_(version) {}

  // Adds or replaces a key (order of first insertion is kept). Setting `general.alignment` (uint32,
  // a power of two) changes the alignment used for the data section.
  void set(std::string key, MetaValue value);
  void set_string(std::string key, std::string value) { set(std::move(key), MetaValue::string(std::move(value))); }
  void set_u32(std::string key, std::uint32_t value) { set(std::move(key), MetaValue::u32(value)); }
  void set_i32(std::string key, std::int32_t value) { set(std::move(key), MetaValue::i32(value)); }
  void set_f32(std::string key, float value) { set(std::move(key), MetaValue::f32(value)); }
  void set_bool(std::string key, bool value) { set(std::move(key), MetaValue::boolean(value)); }

  // Copies the data; its size must equal tensor_bytes(type, shape). Names must be unique.
  void add_tensor(std::string name, kernels::GgmlType type, std::vector<std::int64_t> shape,
                  std::span<const std::byte> data);
  void add_tensor(std::string name, kernels::GgmlType type, std::vector<std::int64_t> shape,
                  std::vector<std::byte>&& data);

  std::uint64_t alignment() const { return alignment_; }
  std::vector<std::byte> to_bytes() const;
  void write(const std::string& path) const;  // throws GgufError on I/O failure

 private:
  struct PendingTensor {
    std::string name;
    kernels::GgmlType type;
    std::vector<std::int64_t> shape;
    std::vector<std::byte> data;
  };
  template <class Sink>
  void emit(Sink& sink) const;

  std::uint32_t version_;
  std::uint64_t alignment_ = 32;
  std::vector<std::pair<std::string, MetaValue>> metadata_;
  std::vector<PendingTensor> tensors_;
};

}  // namespace podworker::model

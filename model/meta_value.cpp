// MetaValue: construction, checked conversions and a short description for dumps and errors.
#include <cmath>
#include <cstdio>
#include <limits>

#include "model/gguf.h"

namespace podworker::model {

std::string_view meta_type_name(MetaType t) {
  switch (t) {
    case MetaType::uint8: return "uint8";
    case MetaType::int8: return "int8";
    case MetaType::uint16: return "uint16";
    case MetaType::int16: return "int16";
    case MetaType::uint32: return "uint32";
    case MetaType::int32: return "int32";
    case MetaType::float32: return "float32";
    case MetaType::boolean: return "bool";
    case MetaType::string: return "string";
    case MetaType::array: return "array";
    case MetaType::uint64: return "uint64";
    case MetaType::int64: return "int64";
    case MetaType::float64: return "float64";
  }
  return "unknown";
}

namespace {

bool is_signed_type(MetaType t) {
  return t == MetaType::int8 || t == MetaType::int16 || t == MetaType::int32 || t == MetaType::int64;
}

[[noreturn]] void wrong_type(MetaType have, std::string_view want) {
  throw GgufError("metadata value is " + std::string(meta_type_name(have)) + ", expected " +
                  std::string(want));
}

}  // namespace

MetaValue MetaValue::make(MetaType type, Value value) {
  MetaValue m;
  m.type_ = type;
  m.value_ = std::move(value);
  return m;
}

MetaValue MetaValue::u8(std::uint8_t v) { return make(MetaType::uint8, std::uint64_t{v}); }
MetaValue MetaValue::u16(std::uint16_t v) { return make(MetaType::uint16, std::uint64_t{v}); }
MetaValue MetaValue::u32(std::uint32_t v) { return make(MetaType::uint32, std::uint64_t{v}); }
MetaValue MetaValue::u64(std::uint64_t v) { return make(MetaType::uint64, v); }
MetaValue MetaValue::i8(std::int8_t v) { return make(MetaType::int8, std::int64_t{v}); }
MetaValue MetaValue::i16(std::int16_t v) { return make(MetaType::int16, std::int64_t{v}); }
MetaValue MetaValue::i32(std::int32_t v) { return make(MetaType::int32, std::int64_t{v}); }
MetaValue MetaValue::i64(std::int64_t v) { return make(MetaType::int64, v); }
MetaValue MetaValue::f32(float v) { return make(MetaType::float32, double{v}); }
MetaValue MetaValue::f64(double v) { return make(MetaType::float64, v); }
MetaValue MetaValue::boolean(bool v) { return make(MetaType::boolean, v); }
MetaValue MetaValue::string(std::string v) { return make(MetaType::string, std::move(v)); }
MetaValue MetaValue::array(MetaType element_type, std::vector<MetaValue> items) {
  for (const auto& item : items) {
    if (item.type() != element_type) {
      throw GgufError("array of " + std::string(meta_type_name(element_type)) + " holds a " +
                      std::string(meta_type_name(item.type())));
    }
  }
  MetaValue m;
  m.type_ = MetaType::array;
  m.array_type_ = element_type;
  m.value_ = std::move(items);
  return m;
}
MetaValue MetaValue::string_array(std::span<const std::string> items) {
  std::vector<MetaValue> v;
  v.reserve(items.size());
  for (const auto& s : items) v.push_back(string(s));
  return array(MetaType::string, std::move(v));
}
MetaValue MetaValue::f32_array(std::span<const float> items) {
  std::vector<MetaValue> v;
  v.reserve(items.size());
  for (float f : items) v.push_back(f32(f));
  return array(MetaType::float32, std::move(v));
}
MetaValue MetaValue::i32_array(std::span<const std::int32_t> items) {
  std::vector<MetaValue> v;
  v.reserve(items.size());
  for (std::int32_t i : items) v.push_back(i32(i));
  return array(MetaType::int32, std::move(v));
}

bool MetaValue::is_integer() const {
  switch (type_) {
    case MetaType::uint8:
    case MetaType::int8:
    case MetaType::uint16:
    case MetaType::int16:
    case MetaType::uint32:
    case MetaType::int32:
    case MetaType::uint64:
    case MetaType::int64: return true;
    default: return false;
  }
}

std::int64_t MetaValue::as_int() const {
  if (!is_integer()) wrong_type(type_, "an integer");
  if (is_signed_type(type_)) return std::get<std::int64_t>(value_);
  const auto u = std::get<std::uint64_t>(value_);
  if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    throw GgufError("metadata value " + std::to_string(u) + " does not fit in int64");
  }
  return static_cast<std::int64_t>(u);
}

std::uint64_t MetaValue::as_uint() const {
  if (!is_integer()) wrong_type(type_, "an integer");
  if (!is_signed_type(type_)) return std::get<std::uint64_t>(value_);
  const auto i = std::get<std::int64_t>(value_);
  if (i < 0) throw GgufError("metadata value " + std::to_string(i) + " is negative");
  return static_cast<std::uint64_t>(i);
}

double MetaValue::as_float() const {
  if (is_float()) return std::get<double>(value_);
  if (is_integer()) {
    return is_signed_type(type_) ? static_cast<double>(std::get<std::int64_t>(value_))
                                 : static_cast<double>(std::get<std::uint64_t>(value_));
  }
  wrong_type(type_, "a number");
}

bool MetaValue::as_bool() const {
  if (type_ != MetaType::boolean) wrong_type(type_, "bool");
  return std::get<bool>(value_);
}

const std::string& MetaValue::as_string() const {
  if (type_ != MetaType::string) wrong_type(type_, "string");
  return std::get<std::string>(value_);
}

MetaType MetaValue::array_type() const {
  if (type_ != MetaType::array) wrong_type(type_, "array");
  return array_type_;
}

const std::vector<MetaValue>& MetaValue::items() const {
  if (type_ != MetaType::array) wrong_type(type_, "array");
  return std::get<std::vector<MetaValue>>(value_);
}

std::size_t MetaValue::size() const { return items().size(); }

const MetaValue& MetaValue::operator[](std::size_t i) const {
  const auto& v = items();
  if (i >= v.size()) {
    throw GgufError("array index " + std::to_string(i) + " out of range (size " +
                    std::to_string(v.size()) + ")");
  }
  return v[i];
}

std::string MetaValue::describe(std::size_t max_items) const {
  switch (type_) {
    case MetaType::string: {
      std::string out = "\"";
      for (char c : std::get<std::string>(value_)) {
        if (c == '\n') {
          out += "\\n";
        } else if (c == '"' || c == '\\') {
          out += '\\';
          out += c;
        } else {
          out += c;
        }
      }
      return out + "\"";
    }
    case MetaType::boolean: return std::get<bool>(value_) ? "true" : "false";
    case MetaType::float32:
    case MetaType::float64: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.9g", std::get<double>(value_));
      return buf;
    }
    case MetaType::array: {
      const auto& v = std::get<std::vector<MetaValue>>(value_);
      std::string out = "[";
      for (std::size_t i = 0; i < v.size() && i < max_items; ++i) {
        if (i) out += ", ";
        out += v[i].describe(max_items);
      }
      if (v.size() > max_items) out += ", ... (" + std::to_string(v.size()) + " items)";
      return out + "]";
    }
    default:
      return is_signed_type(type_) ? std::to_string(std::get<std::int64_t>(value_))
                                   : std::to_string(std::get<std::uint64_t>(value_));
  }
}

}  // namespace podworker::model

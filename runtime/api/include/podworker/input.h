// Typed reads of a job's input whose failures name the field, in the spirit of runpod-python's
// rp_validator: `input.words_per_chunk must be an integer ≥ 1`. A handler throws InputError (the
// readers do) and the runtime fails that job with exactly the message, without a traceback: the
// caller sent something wrong, the handler did not break.
#pragma once

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

#include "podworker/json.h"

namespace podworker {

class InputError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

class InputReader {
 public:
  static constexpr std::int64_t kNoMin = std::numeric_limits<std::int64_t>::min();
  static constexpr std::int64_t kNoMax = std::numeric_limits<std::int64_t>::max();

  // `path` names the object in messages: "input", or "input.options" for a nested reader.
  explicit InputReader(const json::Value& input, std::string path = "input")
      : value_(input), path_(std::move(path)) {
    if (!value_.IsObject()) throw InputError(path_ + " must be a JSON object");
  }

  bool has(std::string_view key) const {
    const json::Value* v = json::find(value_, key);
    return v != nullptr && !v->IsNull();
  }

  std::int64_t integer(std::string_view key, std::int64_t fallback, std::int64_t min = kNoMin,
                       std::int64_t max = kNoMax) const {
    const json::Value* v = present(key);
    return v == nullptr ? fallback : checked_integer(key, *v, min, max);
  }
  std::int64_t required_integer(std::string_view key, std::int64_t min = kNoMin,
                                std::int64_t max = kNoMax) const {
    return checked_integer(key, required(key, "an integer"), min, max);
  }

  double number(std::string_view key, double fallback,
                double min = -std::numeric_limits<double>::infinity(),
                double max = std::numeric_limits<double>::infinity()) const {
    const json::Value* v = present(key);
    if (v == nullptr) return fallback;
    if (!v->IsNumber() || v->GetDouble() < min || v->GetDouble() > max) {
      throw InputError(field(key) + " must be a number" + range_text(min, max));
    }
    return v->GetDouble();
  }

  bool boolean(std::string_view key, bool fallback) const {
    const json::Value* v = present(key);
    if (v == nullptr) return fallback;
    if (!v->IsBool()) throw InputError(field(key) + " must be true or false");
    return v->GetBool();
  }

  // The views point into the job's input: valid during execute().
  std::string_view string(std::string_view key, std::string_view fallback) const {
    const json::Value* v = present(key);
    return v == nullptr ? fallback : checked_string(key, *v);
  }
  std::string_view required_string(std::string_view key) const {
    return checked_string(key, required(key, "a string"));
  }

  // A reader of the nested object `key` (required).
  InputReader object(std::string_view key) const {
    required(key, "a JSON object");
    return InputReader(*json::find(value_, key), field(key));
  }

  std::string field(std::string_view key) const { return path_ + "." + std::string(key); }

 private:
  const json::Value* present(std::string_view key) const {
    const json::Value* v = json::find(value_, key);
    return v == nullptr || v->IsNull() ? nullptr : v;
  }
  const json::Value& required(std::string_view key, std::string_view what) const {
    const json::Value* v = present(key);
    if (v == nullptr) throw InputError(field(key) + " is required (" + std::string(what) + ")");
    return *v;
  }
  std::int64_t checked_integer(std::string_view key, const json::Value& v, std::int64_t min,
                               std::int64_t max) const {
    if (!v.IsInt64() || v.GetInt64() < min || v.GetInt64() > max) {
      throw InputError(field(key) + " must be an integer" + range_text(min, max));
    }
    return v.GetInt64();
  }
  std::string_view checked_string(std::string_view key, const json::Value& v) const {
    if (!v.IsString()) throw InputError(field(key) + " must be a string");
    return {v.GetString(), v.GetStringLength()};
  }
  template <typename T>
  static std::string number_text(T v) {
    if constexpr (std::is_integral_v<T>) {
      return std::to_string(v);
    } else {
      std::string s = std::to_string(v);  // trims "1.500000" to "1.5"
      while (s.size() > 1 && s.back() == '0') s.pop_back();
      if (!s.empty() && s.back() == '.') s.pop_back();
      return s;
    }
  }
  template <typename T>
  static std::string range_text(T min, T max) {
    const bool low =
        min != std::numeric_limits<T>::lowest() && min != -std::numeric_limits<T>::infinity();
    const bool high =
        max != std::numeric_limits<T>::max() && max != std::numeric_limits<T>::infinity();
    if (low && high) return " in [" + number_text(min) + ", " + number_text(max) + "]";
    if (low) return " \u2265 " + number_text(min);
    if (high) return " \u2264 " + number_text(max);
    return {};
  }

  const json::Value& value_;
  std::string path_;
};

}  // namespace podworker

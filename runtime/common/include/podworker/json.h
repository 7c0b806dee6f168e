// Project-wide RapidJSON configuration. Include this header instead of RapidJSON's own so every
// translation unit agrees on the macros below (they change class layouts and must never differ).
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>

namespace podworker {

// Raised for any JSON the program cannot accept: malformed text, wrong types, size over a cap.
// Untrusted JSON must never reach an abort(), so RapidJSON's own assertions throw this too.
class JsonError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace podworker

#ifndef RAPIDJSON_ASSERT
#define RAPIDJSON_ASSERT(x)                                                      \
  do {                                                                           \
    if (!(x)) throw ::podworker::JsonError("JSON value has the wrong type: " #x); \
  } while (0)
#endif
#ifndef RAPIDJSON_HAS_STDSTRING
#define RAPIDJSON_HAS_STDSTRING 1
#endif

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace podworker::json {

using Document = rapidjson::Document;
using Value = rapidjson::Value;

// Parses `text` as JSON; throws JsonError with RapidJSON's message and offset when malformed or
// larger than `max_bytes`.
Document parse(std::string_view text, std::size_t max_bytes = std::size_t(-1));

// Like parse(), and also requires the top level to be an object.
Document parse_object(std::string_view text, std::size_t max_bytes = std::size_t(-1));

// Compact JSON text of a value.
std::string to_string(const Value& value);

// Deep copy into a fresh document (RapidJSON values are move-only and bound to an allocator).
Document copy(const Value& value);

// Deep copy owned by `alloc`, strings included. RapidJSON's own copy constructor shares "const"
// strings (those made with StringRef) instead of copying them, which dangles once the original's
// storage is gone — e.g. a chunk a handler yielded from a temporary std::string.
Value clone(const Value& value, Document::AllocatorType& alloc);

// Type-checked member lookups: nullptr (or the fallback) when absent, JsonError when present with
// the wrong type. `what` names the member in the error message.
const Value* find(const Value& object, std::string_view key);
std::string get_string(const Value& object, std::string_view key, std::string fallback = {});
double get_number(const Value& object, std::string_view key, double fallback);
std::int64_t get_int(const Value& object, std::string_view key, std::int64_t fallback);
bool get_bool(const Value& object, std::string_view key, bool fallback);

// A string value owned by `alloc`.
inline Value string_value(std::string_view s, Document::AllocatorType& alloc) {
  return Value(s.data(), static_cast<rapidjson::SizeType>(s.size()), alloc);
}

}  // namespace podworker::json

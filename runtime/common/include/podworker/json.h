// Project-wide RapidJSON configuration. Include this header instead of RapidJSON's own so every
// translation unit agrees on the macros below (they change class layouts and must never differ).
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace podworker {

// Raised for any JSON the program cannot accept: malformed text, wrong types, size over a cap.
// Untrusted JSON must never reach an abort(), so RapidJSON's own assertions throw this too. The
// kind lets a caller tell the reasons apart without matching message text.
class JsonError : public std::runtime_error {
 public:
  enum class Kind { invalid, too_large, too_deep, bad_encoding };
  explicit JsonError(const std::string& what, Kind kind = Kind::invalid)
      : std::runtime_error(what), kind_(kind) {}
  explicit JsonError(const char* what, Kind kind = Kind::invalid)
      : std::runtime_error(what), kind_(kind) {}
  Kind kind() const noexcept { return kind_; }

 private:
  Kind kind_;
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

inline constexpr std::size_t kNoSizeLimit = std::size_t(-1);

// The deepest nesting of objects and arrays inside each other that JSON text may have ({} is 1,
// {"a":[]} is 2). Parsing, writing and copying here are iterative, so the limit does not protect
// this process's stack; it keeps every value the runtime stores shallow enough that code which
// does walk values recursively (RapidJSON's Accept and operator==, a handler's own walk, a
// client's parser: Python's json gives up near 1000 levels) stays safe. Real payloads nest a
// dozen levels; 256 leaves ample room.
inline constexpr std::size_t kMaxDepth = 256;
// Levels the runtime adds around a client's value on later hops: a job-take reply puts the input
// in a job object inside an array, a result puts the output in {"output": ...}, the status reply
// wraps that again. Documents of those hops are parsed with kMaxEnvelopedDepth so that everything
// accepted from a client (kMaxDepth) passes every hop after it.
inline constexpr std::size_t kEnvelopeDepth = 16;
inline constexpr std::size_t kMaxEnvelopedDepth = kMaxDepth + kEnvelopeDepth;

// Parses `text` as JSON; throws JsonError when it is malformed (RapidJSON's message and offset),
// larger than `max_bytes`, nests deeper than `max_depth`, or has a string (or key) that is not
// valid UTF-8 — overlongs, surrogates (raw or as \u escapes) and truncated sequences included.
Document parse(std::string_view text, std::size_t max_bytes = kNoSizeLimit,
               std::size_t max_depth = kMaxDepth);

// Like parse(), and also requires the top level to be an object.
Document parse_object(std::string_view text, std::size_t max_bytes = kNoSizeLimit,
                      std::size_t max_depth = kMaxDepth);

// The result of parse_pruned().
struct PrunedDocument {
  Document doc;
  // Positions in the root array (or member positions in the root object) of the elements that
  // held content nested deeper than the limit; ascending, each listed once.
  std::vector<std::size_t> pruned;
};

// Like parse(), except that content nested deeper than `max_depth` does not fail the whole text:
// each container that would open past the limit is skipped unbuilt and stored as null, and the
// root element holding it is listed. A worker parses job-take replies this way so a job nested too
// deep still yields its id, to be failed with a clear error, and the rest of the batch runs.
PrunedDocument parse_pruned(std::string_view text, std::size_t max_bytes, std::size_t max_depth);

// Compact JSON text of a value. Always valid JSON and valid UTF-8, whatever the value holds: a
// string (or key) with invalid UTF-8 has each bad byte written as U+FFFD, and a NaN or infinite
// number is written as null (JSON has neither). Iterative: any depth is safe.
std::string to_string(const Value& value);

// Deep copy into a fresh document (RapidJSON values are move-only and bound to an allocator).
Document copy(const Value& value);

// Deep copy owned by `alloc`, strings included. RapidJSON's own copy constructor shares "const"
// strings (those made with StringRef) instead of copying them, which dangles once the original's
// storage is gone — e.g. a chunk a handler yielded from a temporary std::string. Iterative, unlike
// RapidJSON's: a value a handler built deeper than any parse allows still copies safely.
Value clone(const Value& value, Document::AllocatorType& alloc);

// Type-checked member lookups: nullptr (or the fallback) when absent, JsonError when present with
// the wrong type, the error message naming `key`. For messages in the caller's terms
// (`input.n must be an integer ≥ 1`), handlers use InputReader (podworker/input.h).
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

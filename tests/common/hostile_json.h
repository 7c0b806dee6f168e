// Hostile JSON text for the tests of every part that reads untrusted JSON: nesting far past the
// limit (as a 200 KB request can) and byte sequences that are not UTF-8.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace podworker::test {

enum class Nesting { objects, arrays, mixed };

// A value `depth` levels deep: {"a":{"a":...1...}}, [[...1...]], or objects and arrays in turn.
inline std::string nested_json(std::size_t depth, Nesting kind) {
  std::string open;
  std::string close;
  open.reserve(depth * 5);
  close.reserve(depth);
  for (std::size_t i = 0; i < depth; ++i) {
    const bool object = kind == Nesting::objects || (kind == Nesting::mixed && i % 2 == 0);
    open += object ? "{\"a\":" : "[";
    close += object ? '}' : ']';
  }
  return open + "1" + std::string(close.rbegin(), close.rend());
}

struct BadUtf8 {
  const char* what;
  const char* bytes;  // what goes between the quotes of a JSON string
};

// One of each way text fails to be UTF-8, raw and through \u escapes.
inline std::vector<BadUtf8> bad_utf8_cases() {
  return {
      {"stray bytes", "\xff\xfe\xc3"},
      {"lone continuation byte", "ab\x80"},
      {"truncated two-byte sequence", "caf\xc3"},
      {"truncated three-byte sequence", "\xe2\x82"},
      {"truncated four-byte sequence", "\xf0\x9f\x98"},
      {"overlong two-byte slash", "\xc0\xaf"},
      {"overlong three-byte slash", "\xe0\x80\xaf"},
      {"overlong four-byte", "\xf0\x80\x80\xaf"},
      {"raw high surrogate", "\xed\xa0\x80"},
      {"raw low surrogate", "\xed\xb0\x80"},
      {"past U+10FFFF", "\xf4\x90\x80\x80"},
      {"escaped lone high surrogate", "\\ud800"},
      {"escaped lone low surrogate", "\\udc00"},
      {"escaped reversed pair", "\\udc00\\ud800"},
  };
}

}  // namespace podworker::test

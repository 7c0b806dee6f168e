// The Unicode facts the byte-level BPE pre-tokenizer needs: UTF-8 decoding that never fails (an
// invalid byte stands for itself, so any byte string round-trips) and the classes behind the
// regex atoms \p{L}, \p{N} and \s.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace podworker::model::unicode {

struct CodepointRange {
  char32_t first, last;  // inclusive
};
// Generated tables (unicode_tables.cpp).
extern const CodepointRange kLetterRanges[];
extern const std::size_t kLetterRangeCount;
extern const CodepointRange kNumberRanges[];
extern const std::size_t kNumberRangeCount;

enum class CharClass : std::uint8_t { letter, number, whitespace, other };

// Not a code point: marks a byte that does not start a valid UTF-8 sequence.
inline constexpr char32_t kInvalid = 0xFFFFFFFF;

struct Decoded {
  char32_t cp;       // kInvalid for an invalid byte
  std::size_t size;  // bytes consumed, at least 1
};
// Decodes the sequence at text[pos] (pos < text.size()); rejects overlong forms, surrogates and
// values above U+10FFFF, each of which yields one invalid byte.
Decoded decode_utf8(std::string_view text, std::size_t pos);

bool is_letter(char32_t cp);
bool is_number(char32_t cp);
bool is_whitespace(char32_t cp);  // the Unicode White_Space property, as regex \s
CharClass char_class(char32_t cp);  // kInvalid is `other`

}  // namespace podworker::model::unicode

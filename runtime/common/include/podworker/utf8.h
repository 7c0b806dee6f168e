// UTF-8 checks shared by the JSON layer (which refuses invalid text on the way in and never writes
// it out) and by text producers such as the token stream.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace podworker {

// Length of the valid UTF-8 character starting at `pos` (1 to 4 bytes), or 0 when the bytes there
// are not one: a stray continuation byte, a truncated sequence, an overlong form, a UTF-16
// surrogate (U+D800..U+DFFF) or a value past U+10FFFF. `pos` must be inside `s`.
std::size_t utf8_char_length(std::string_view s, std::size_t pos);

// True when `s` is entirely valid UTF-8 (strict, as RFC 3629 defines it).
bool utf8_valid(std::string_view s);

// `s` with each byte that does not start a valid character replaced by U+FFFD.
std::string utf8_sanitize(std::string_view s);

}  // namespace podworker

// How a yielded stream chunk becomes posts of at most `max_bytes` each (also in the README).
//
// A post body is {"output": piece}. A chunk whose body fits is posted as is. Otherwise:
//  - a string is split into successive strings (never inside a UTF-8 sequence); concatenating
//    the pieces gives the original text;
//  - an array is split element-wise into successive sub-arrays; concatenating them gives the
//    original array (an element that alone does not fit cannot be split);
//  - anything else (object, number, ...) cannot be split.
// A chunk that cannot be split raises ChunkTooLarge, which fails the job with that message.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "podworker/json.h"

namespace podworker::worker {

class ChunkTooLarge : public std::length_error {
 public:
  using std::length_error::length_error;
};

// Bytes of {"output":} around a piece.
inline constexpr std::size_t kOutputEnvelopeBytes = 11;

// Size of `text` once written as a JSON string, quotes included (RapidJSON's escaping).
std::size_t json_string_size(std::string_view text);

// Splits raw text into pieces whose {"output": "<piece>"} body is at most max_bytes.
std::vector<std::string_view> split_text(std::string_view text, std::size_t max_bytes);

// The post bodies for one chunk, each at most max_bytes. Throws ChunkTooLarge.
std::vector<std::string> chunk_bodies(const json::Value& chunk, std::size_t max_bytes);

// {"output": <json string of text>}
std::string text_body(std::string_view text);

}  // namespace podworker::worker

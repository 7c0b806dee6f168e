#include "stream_split.h"

namespace podworker::worker {
namespace {

std::size_t escaped_size(unsigned char c) {
  if (c == '"' || c == '\\') return 2;
  if (c < 0x20) {
    return (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') ? 2 : 6;
  }
  return 1;
}

// Length of the UTF-8 sequence a lead byte starts (1 for ASCII and for stray bytes, which the
// writer copies through unchanged).
std::size_t sequence_length(unsigned char lead) {
  if (lead >= 0xF0 && lead < 0xF8) return 4;
  if (lead >= 0xE0) return lead < 0xF0 ? 3 : 1;
  if (lead >= 0xC0) return 2;
  return 1;
}

std::string body_of(const json::Value& piece) {
  std::string body = "{\"output\":";
  body += json::to_string(piece);
  body += '}';
  return body;
}

std::string too_large(std::size_t size, std::size_t max_bytes, const char* why) {
  return "stream chunk of " + std::to_string(size) + " bytes exceeds the " +
         std::to_string(max_bytes) + "-byte post limit and " + why;
}

}  // namespace

std::size_t json_string_size(std::string_view text) {
  std::size_t n = 2;
  for (unsigned char c : text) n += escaped_size(c);
  return n;
}

std::string text_body(std::string_view text) {
  json::Value v(rapidjson::StringRef(text.data(), text.size()));
  return body_of(v);
}

std::vector<std::string_view> split_text(std::string_view text, std::size_t max_bytes) {
  // Room for the escaped characters of one piece; a 6-byte escape must always fit.
  const std::size_t budget = max_bytes > kOutputEnvelopeBytes + 2 + 6
                                 ? max_bytes - kOutputEnvelopeBytes - 2
                                 : throw ChunkTooLarge("post limit too small to carry text");
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t used = 0;
    std::size_t i = start;
    while (i < text.size()) {
      const auto lead = static_cast<unsigned char>(text[i]);
      std::size_t len = sequence_length(lead);
      if (i + len > text.size()) len = text.size() - i;
      std::size_t cost = 0;
      for (std::size_t k = 0; k < len; ++k) cost += escaped_size(static_cast<unsigned char>(text[i + k]));
      if (used + cost > budget) break;
      used += cost;
      i += len;
    }
    pieces.push_back(text.substr(start, i - start));
    start = i;
  }
  if (pieces.empty()) pieces.push_back(text);
  return pieces;
}

std::vector<std::string> chunk_bodies(const json::Value& chunk, std::size_t max_bytes) {
  std::vector<std::string> bodies;
  if (chunk.IsString()) {
    const std::string_view text(chunk.GetString(), chunk.GetStringLength());
    if (json_string_size(text) + kOutputEnvelopeBytes <= max_bytes) {
      bodies.push_back(text_body(text));
      return bodies;
    }
    for (std::string_view piece : split_text(text, max_bytes)) bodies.push_back(text_body(piece));
    return bodies;
  }
  std::string whole = body_of(chunk);
  if (whole.size() <= max_bytes) {
    bodies.push_back(std::move(whole));
    return bodies;
  }
  if (!chunk.IsArray()) {
    throw ChunkTooLarge(too_large(whole.size(), max_bytes,
                                  "cannot be split (only strings and arrays are split)"));
  }
  // Greedy: grow a sub-array element by element while its body fits. "," between elements and
  // "[]" around them are counted exactly, so the body written equals the size computed.
  std::string current;
  std::size_t count = 0;
  auto flush = [&] {
    if (count == 0) return;
    bodies.push_back("{\"output\":[" + current + "]}");
    current.clear();
    count = 0;
  };
  for (const auto& element : chunk.GetArray()) {
    const std::string text = json::to_string(element);
    if (kOutputEnvelopeBytes + 2 + text.size() > max_bytes) {
      throw ChunkTooLarge(too_large(whole.size(), max_bytes,
                                    "holds an array element that alone does not fit"));
    }
    const std::size_t grown = kOutputEnvelopeBytes + 2 + current.size() + (count ? 1 : 0) + text.size();
    if (grown > max_bytes) flush();
    if (count) current += ',';
    current += text;
    ++count;
  }
  flush();
  return bodies;
}

}  // namespace podworker::worker

#include "llm/text_stream.h"

#include <algorithm>

#include "podworker/utf8.h"

namespace podworker::llm {

namespace {

// Length of the UTF-8 sequence a lead byte starts; 0 for a continuation or invalid byte.
int sequence_length(unsigned char c) {
  if (c < 0x80) return 1;
  if ((c & 0xE0) == 0xC0) return c >= 0xC2 ? 2 : 0;
  if ((c & 0xF0) == 0xE0) return 3;
  if ((c & 0xF8) == 0xF0) return c <= 0xF4 ? 4 : 0;
  return 0;
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

}  // namespace

std::size_t utf8_complete_prefix(std::string_view s) {
  // Only the last three bytes can belong to an unfinished character.
  const std::size_t n = s.size();
  for (std::size_t back = 1; back <= std::min<std::size_t>(4, n); ++back) {
    const auto c = static_cast<unsigned char>(s[n - back]);
    if (is_continuation(c)) continue;
    const int len = sequence_length(c);
    if (len > static_cast<int>(back)) return n - back;  // lead byte still waiting for its tail
    return n;
  }
  return n;
}

TextStream::TextStream(std::vector<std::string> stop) {
  for (auto& s : stop) {
    if (!s.empty()) stop_.push_back(std::move(s));
  }
}

std::string TextStream::push(std::string_view bytes) {
  if (stopped_) return {};
  pending_.append(bytes);
  // A stop string anywhere in the pending text ends the stream just before it.
  std::size_t cut = std::string::npos;
  for (const auto& s : stop_) cut = std::min(cut, pending_.find(s));
  if (cut != std::string::npos) {
    stopped_ = true;
    std::string out = utf8_sanitize(std::string_view(pending_).substr(0, cut));
    pending_.clear();
    emitted_ += out;
    return out;
  }
  // Hold back the longest pending suffix that could still grow into a stop string.
  std::size_t hold = 0;
  for (const auto& s : stop_) {
    for (std::size_t len = std::min(s.size() - 1, pending_.size()); len > hold; --len) {
      if (std::string_view(pending_).substr(pending_.size() - len) == std::string_view(s).substr(0, len)) {
        hold = len;
        break;
      }
    }
  }
  const std::size_t ready = utf8_complete_prefix(std::string_view(pending_).substr(0, pending_.size() - hold));
  std::string out = utf8_sanitize(std::string_view(pending_).substr(0, ready));
  pending_.erase(0, ready);
  emitted_ += out;
  return out;
}

std::string TextStream::finish() {
  if (stopped_) return {};
  std::string out = utf8_sanitize(pending_);
  pending_.clear();
  emitted_ += out;
  return out;
}

}  // namespace podworker::llm

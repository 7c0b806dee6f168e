#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "basic_handlers.h"

namespace podworker::handlers {
namespace {

constexpr std::uint64_t kMaxRepeatedBytes = 64u << 20;

// Moves `end` back so a piece never ends inside a UTF-8 sequence (a lone continuation byte would
// make each piece invalid text, although the concatenation is fine).
std::size_t utf8_boundary(std::string_view text, std::size_t end) {
  while (end < text.size() && end > 0 && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) --end;
  return end;
}

}  // namespace

void stream_echo(Job& job, Emitter& out) {
  const json::Value& input = job.input();
  std::string_view text;
  std::size_t chunk = 16;
  bool progress = true;
  if (input.IsString()) {
    text = std::string_view(input.GetString(), input.GetStringLength());
  } else {
    const json::Value* t = json::find(input, "text");
    if (t == nullptr || !t->IsString()) {
      throw std::invalid_argument("stream_echo needs input {\"text\": string} or a string input");
    }
    text = std::string_view(t->GetString(), t->GetStringLength());
    const auto size = json::get_int(input, "chunk_size", 16);
    if (size < 0) throw std::invalid_argument("\"chunk_size\" must be >= 0");
    chunk = static_cast<std::size_t>(size);
    progress = json::get_bool(input, "progress", true);
  }
  // "repeat": the text N times over, so a test can stream megabytes from a small request.
  std::string repeated;
  if (input.IsObject()) {
    const auto repeat = json::get_int(input, "repeat", 1);
    if (repeat < 1 || static_cast<std::uint64_t>(repeat) * text.size() > kMaxRepeatedBytes) {
      throw std::invalid_argument("\"repeat\" must be >= 1 and the repeated text at most 64 MB");
    }
    if (repeat > 1) {
      repeated.reserve(text.size() * static_cast<std::size_t>(repeat));
      for (std::int64_t i = 0; i < repeat; ++i) repeated += text;
      text = repeated;
    }
  }
  if (chunk == 0) chunk = std::max<std::size_t>(text.size(), 1);

  json::Document update;
  update.SetObject();
  auto& a = update.GetAllocator();
  update.AddMember("sent", 0, a);
  update.AddMember("total", static_cast<std::uint64_t>(text.size()), a);
  std::size_t pos = 0;
  while (pos < text.size() && !job.cancelled()) {
    std::size_t end = utf8_boundary(text, std::min(text.size(), pos + chunk));
    if (end <= pos) {
      // The chunk is smaller than the character at pos: send that whole character instead.
      end = pos + 1;
      while (end < text.size() && (static_cast<unsigned char>(text[end]) & 0xC0) == 0x80) ++end;
    }
    out.yield(text.substr(pos, end - pos));
    pos = end;
    if (progress) {
      update["sent"].SetUint64(pos);
      job.progress(update);
    }
  }
}

}  // namespace podworker::handlers

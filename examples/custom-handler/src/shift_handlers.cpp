#include "shift_handlers.h"

#include <algorithm>
#include <stdexcept>
#include <string_view>

#include "kernels/device.h"
#include "shift.h"

namespace shift {

namespace json = podworker::json;

namespace {

// Where the piece starting at `begin` ends: after at most `max_bytes`, but never inside a UTF-8
// character (before a continuation byte 10xxxxxx), so every piece is valid text on its own. A
// character longer than `max_bytes` makes a piece of its own.
std::size_t piece_end(std::string_view text, std::size_t begin, std::size_t max_bytes) {
  const auto continues = [&](std::size_t i) {
    return i < text.size() && (static_cast<unsigned char>(text[i]) & 0xC0) == 0x80;
  };
  std::size_t end = std::min(text.size(), begin + max_bytes);
  while (end > begin && continues(end)) --end;
  if (end == begin) {
    end = begin + 1;
    while (continues(end)) ++end;
  }
  return end;
}

}  // namespace

ShiftInput parse_input(const json::Value& input) {
  if (!input.IsObject()) throw std::invalid_argument("input must be an object");
  ShiftInput parsed;
  const json::Value* text = json::find(input, "text");
  if (text == nullptr || !text->IsString()) throw std::invalid_argument("input.text must be a string");
  if (text->GetStringLength() > kMaxTextBytes) {
    throw std::invalid_argument("input.text is longer than " + std::to_string(kMaxTextBytes) + " bytes");
  }
  parsed.text.assign(text->GetString(), text->GetStringLength());
  if (const json::Value* shift = json::find(input, "shift")) {
    if (!shift->IsInt64()) throw std::invalid_argument("input.shift must be an integer");
    parsed.shift = normalize(shift->GetInt64());
  }
  if (const json::Value* chunk = json::find(input, "chunk_chars")) {
    if (!chunk->IsInt64() || chunk->GetInt64() < 1 || chunk->GetInt64() > 65536) {
      throw std::invalid_argument("input.chunk_chars must be an integer in [1, 65536]");
    }
    parsed.chunk_chars = static_cast<std::size_t>(chunk->GetInt64());
  }
  return parsed;
}

void ShiftBase::init(const podworker::HandlerContext& context) {
  use_cuda_ = cuda_available();
  context.log.info(std::string("running on ") +
                   (use_cuda_ ? "CUDA device " + podworker::kernels::cuda::device_info(0).name
                              : std::string("the CPU (no CUDA device or built without CUDA)")));
}

std::string ShiftBase::transform(std::string_view text, int shift) const {
  if (!use_cuda_) return shift_cpu(text, shift);
  podworker::kernels::cuda::Stream stream;  // one per call: concurrent jobs never share a stream
  return shift_cuda(text, shift, stream);
}

// --- plain handler: return the result, or an explicit error for bad input ---
podworker::Output ShiftHandler::execute(podworker::Job& job, podworker::Emitter&) {
  ShiftInput in;
  try {
    in = parse_input(job.input());
  } catch (const std::invalid_argument& e) {
    return podworker::Output::error(e.what());
  }
  json::Document result(rapidjson::kObjectType);
  auto& alloc = result.GetAllocator();
  result.AddMember("text", json::string_value(transform(in.text, in.shift), alloc), alloc);
  result.AddMember("device", json::string_value(device_name(), alloc), alloc);
  return podworker::Output::ok(std::move(result));
}

// --- streaming handler: yield pieces, post progress, honour cancellation ---
podworker::Output ShiftStreamHandler::execute(podworker::Job& job, podworker::Emitter& out) {
  const ShiftInput in = parse_input(job.input());  // a bad input throws: the job fails with it
  const std::string_view text = in.text;
  int reported_percent = 0;
  for (std::size_t begin = 0; begin < text.size();) {
    if (job.cancelled()) return {};  // nothing more is posted for a cancelled job
    const std::size_t end = piece_end(text, begin, in.chunk_chars);
    out.yield(transform(text.substr(begin, end - begin), in.shift));
    begin = end;

    const int percent = static_cast<int>(begin * 100 / text.size());
    if (percent >= reported_percent + 10 && begin < text.size()) {
      reported_percent = percent - percent % 10;
      json::Document progress(rapidjson::kObjectType);
      progress.AddMember("percent", reported_percent, progress.GetAllocator());
      job.progress(progress);
    }
  }
  return {};
}

void register_handlers(podworker::HandlerRegistry& registry) {
  registry.add<ShiftHandler>("shift");
  registry.add<ShiftStreamHandler>("shift_stream");
}

}  // namespace shift

// Two handlers around the shift kernel: `shift` returns its result, `shift_stream` streams it.
#pragma once

#include <cstddef>
#include <string>

#include "podworker/handler.h"

namespace shift {

// A job's input, checked: {"text": string (required, at most kMaxTextBytes),
// "shift": integer (default 13), "chunk_chars": integer in [1, 65536] (default 16, streaming only)}.
struct ShiftInput {
  std::string text;
  int shift = 13;
  std::size_t chunk_chars = 16;
};
inline constexpr std::size_t kMaxTextBytes = 1 << 20;
// Throws std::invalid_argument naming the offending field.
ShiftInput parse_input(const podworker::json::Value& input);

// Chooses the device once, in init(), and says which; execute() is thread-safe (each job uses its
// own CUDA stream), so the worker may run it with --concurrency > 1.
class ShiftBase : public podworker::Handler {
 public:
  void init(const podworker::HandlerContext& context) override;

 protected:
  std::string transform(std::string_view text, int shift) const;
  const char* device_name() const { return use_cuda_ ? "cuda" : "cpu"; }

 private:
  bool use_cuda_ = false;
};

// Plain: returns {"text": shifted text, "device": "cuda" | "cpu"}.
class ShiftHandler final : public ShiftBase {
 public:
  podworker::Output execute(podworker::Job& job, podworker::Emitter& out) override;
};

// Streaming: yields the shifted text in pieces of about chunk_chars bytes (never splitting a UTF-8
// character), posts progress every 10%, and stops at the next piece when the job is cancelled.
class ShiftStreamHandler final : public ShiftBase {
 public:
  bool streams() const override { return true; }
  podworker::Output execute(podworker::Job& job, podworker::Emitter& out) override;
};

// Registers both under the names "shift" and "shift_stream".
void register_handlers(podworker::HandlerRegistry& registry);

}  // namespace shift

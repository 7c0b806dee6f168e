// The built-in handlers every worker binary carries:
//   echo         returns its input unchanged.
//   stream_echo  streams the input text in pieces: input {"text": str, "chunk_size": bytes (default
//                16; 0 = the whole text in one yield), "repeat": N (the text N times over, at
//                most 64 MB; default 1), "progress": bool (default true)}; a string input is the
//                text itself. Posts {"sent", "total"} progress after each piece.
//   sleep        sleeps input {"ms": N (default 1000), "step_ms": S (default 100)}, posting
//                {"slept_ms", "total_ms"} progress every step; returns {"slept_ms": N}. Wakes at
//                once when the job is cancelled (for timeout, cancel and shutdown tests).
#pragma once

#include "podworker/handler.h"

namespace podworker::handlers {

void register_basic(HandlerRegistry& registry);

}  // namespace podworker::handlers

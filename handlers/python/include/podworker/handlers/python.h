// The `python` handler: runs a handler file written for runpod-python (`import runpod`,
// `runpod.serverless.start({"handler": fn, ...})`) unchanged, in the user's own interpreter.
// `worker --python handler.py [--python-exe PATH]` selects it; docs/handlers.md, "Bring your
// runpod-python handler", says what is supported and how it runs.
//
// The handler runs in a separate Python process (podworker_bridge.py, shipped in
// share/podworker/python with a `runpod` compatibility package) that talks to this handler over a
// socket; the worker's heartbeat, stop channel and posts stay native, and a crash of the
// interpreter fails the jobs it was running and starts a fresh one.
#pragma once

#include "podworker/handler.h"

namespace podworker::handlers {

void register_python(HandlerRegistry& registry);

}  // namespace podworker::handlers

// The `worker` program: the built-in handlers, then the shared worker runtime.
#include "podworker/handlers/basic.h"
#include "podworker/handlers/python.h"
#include "podworker/handlers/textgen.h"
#include "podworker/worker.h"

int main(int argc, char** argv) {
  auto& registry = podworker::HandlerRegistry::global();
  podworker::handlers::register_basic(registry);
  // Registering is cheap: the model loads in the handler's init(), only when --handler textgen.
  podworker::handlers::register_textgen(registry);
  // worker --python handler.py: a runpod-python handler file, run in its own interpreter.
  podworker::handlers::register_python(registry);
  // echo answers any job: a container started without PODWORKER_HANDLER still serves.
  return podworker::worker_main(argc, argv, {.default_handler = "echo", .registry = &registry});
}

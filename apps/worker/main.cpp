// The `worker` program: the built-in handlers, then the shared worker runtime.
#include "podworker/handlers/basic.h"
#include "podworker/worker.h"

int main(int argc, char** argv) {
  auto& registry = podworker::HandlerRegistry::global();
  podworker::handlers::register_basic(registry);
  // Text generation: podworker::handlers::register_textgen(registry) goes here once
  // handlers/textgen exists (its header: podworker/handlers/textgen.h).
  return podworker::worker_main(argc, argv, registry);
}

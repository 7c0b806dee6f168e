// The example worker: podworker's runtime with our two handlers. "shift" runs unless --handler (or
// the PODWORKER_HANDLER variable in a container) picks the other; everything else is the stock
// worker.
#include "podworker/worker.h"
#include "shift_handlers.h"

int main(int argc, char** argv) {
  shift::register_handlers(podworker::HandlerRegistry::global());
  return podworker::worker_main(argc, argv, {.default_handler = "shift"});
}

#include "basic_handlers.h"
#include "podworker/handlers/basic.h"

namespace podworker::handlers {

void register_basic(HandlerRegistry& registry) {
  registry.add("echo", plain_handler(echo));
  registry.add("stream_echo", streaming_handler(stream_echo));
  registry.add("sleep", plain_handler(sleep));
}

}  // namespace podworker::handlers

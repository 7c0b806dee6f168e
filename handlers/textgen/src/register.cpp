#include "podworker/handlers/textgen.h"

#include "textgen_handler.h"

namespace podworker::handlers {

void register_textgen(HandlerRegistry& registry) { registry.add<textgen::TextgenHandler>("textgen"); }

}  // namespace podworker::handlers

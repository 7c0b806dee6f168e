// The worker's --help: its flags and environment, and each registered handler's settings.
#pragma once

#include <string>

#include "podworker/handler.h"

namespace podworker::worker {

extern const char* const kUsage;

// Each registered handler's settings, for --help. Settings are declared before init(), so a
// handler instance that was never initialized can say them.
std::string settings_help(const HandlerRegistry& registry);

}  // namespace podworker::worker

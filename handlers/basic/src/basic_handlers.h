// The functions behind the built-in handlers (registered in register.cpp).
#pragma once

#include "podworker/handler.h"

namespace podworker::handlers {

Output echo(Job& job);
void stream_echo(Job& job, Emitter& out);
Output sleep(Job& job);

}  // namespace podworker::handlers

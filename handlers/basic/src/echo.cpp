#include "basic_handlers.h"

namespace podworker::handlers {

Output echo(Job& job) { return Output::ok(json::copy(job.input())); }

}  // namespace podworker::handlers

// Names the calling thread, as `top -H`, `ps -L`, perf, gdb and /proc/PID/task/*/comm show it: a
// profile of a process with a dozen threads then says which part spends the time (an endpoint's
// I/O threads, its Redis reply reader, a worker's job slots, the model's compute pool).
#pragma once

#include <string_view>

namespace podworker {

// Linux keeps at most 15 bytes of a name: a longer one is cut there. Failure is ignored: a name
// is a diagnostic, never worth failing a thread for.
void name_this_thread(std::string_view name) noexcept;

}  // namespace podworker

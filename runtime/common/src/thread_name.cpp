#include "podworker/thread_name.h"

#include <pthread.h>

#include <algorithm>
#include <array>

namespace podworker {

void name_this_thread(std::string_view name) noexcept {
  std::array<char, 16> text{};  // the kernel's TASK_COMM_LEN, terminator included
  const std::size_t n = std::min(name.size(), text.size() - 1);
  std::copy_n(name.data(), n, text.data());
  pthread_setname_np(pthread_self(), text.data());
}

}  // namespace podworker

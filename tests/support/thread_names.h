// The names of this process's threads as the kernel shows them (/proc/self/task/*/comm), for the
// tests that check each part names the threads it starts (podworker/thread_name.h).
#pragma once

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace podworker::test {

inline std::vector<std::string> thread_names() {
  std::vector<std::string> names;
  std::error_code ec;
  // A thread may end while the folder is read: its entry then fails to open and is skipped.
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    std::ifstream comm(task.path() / "comm");
    std::string name;
    if (std::getline(comm, name)) names.push_back(name);
  }
  return names;
}

inline std::size_t threads_named(const std::string& name) {
  std::size_t n = 0;
  for (const auto& t : thread_names()) n += t == name ? 1 : 0;
  return n;
}

}  // namespace podworker::test

#include "podworker/thread_name.h"

#include <doctest/doctest.h>
#include <pthread.h>

#include <array>
#include <string>
#include <thread>

#include "thread_names.h"

using podworker::name_this_thread;
using podworker::test::threads_named;

namespace {

std::string own_name() {
  std::array<char, 64> text{};
  REQUIRE(pthread_getname_np(pthread_self(), text.data(), text.size()) == 0);
  return text.data();
}

}  // namespace

TEST_CASE("a thread's name is what the kernel shows for it") {
  std::string seen;
  std::size_t listed = 0;
  std::jthread([&] {
    name_this_thread("pw-test-name");
    seen = own_name();
    listed = threads_named("pw-test-name");
  }).join();
  CHECK(seen == "pw-test-name");
  CHECK(listed == 1);
}

TEST_CASE("a name past the kernel's 15 bytes is cut there, not refused") {
  std::string seen;
  std::jthread([&] {
    name_this_thread("pw-a-name-that-is-far-too-long");
    seen = own_name();
  }).join();
  CHECK(seen == "pw-a-name-that-");
  CHECK(seen.size() == 15);
}

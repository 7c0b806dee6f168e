// The Redis store tests need a redis-server binary to start their own servers. Without one they
// report skipped (CTest's SKIP_RETURN_CODE), never passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "redis_test_server.h"

int main(int argc, char** argv) {
  if (podworker::test::redis_server_path().empty()) {
    std::puts(
        "redis-server not found (install redis-server or set PODWORKER_REDIS_SERVER): Redis store "
        "tests skipped");
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}

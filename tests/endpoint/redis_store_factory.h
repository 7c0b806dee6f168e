// The conformance suite's factory for RedisStore: one redis-server for the test process, emptied
// before each case, so each case starts from nothing.
#pragma once

#include <functional>
#include <memory>

#include "redis_store.h"
#include "redis_test_server.h"

struct RedisStoreFactory {
  static podworker::test::RedisTestServer& server() {
    static podworker::test::RedisTestServer s;
    return s;
  }
  static std::unique_ptr<podworker::endpoint::JobStore> make(
      podworker::endpoint::StoreOptions options,
      std::function<void(podworker::endpoint::TerminalEvent)> sink) {
    server().flush();
    return std::make_unique<podworker::endpoint::RedisStore>(server().address(), "conformance",
                                                             std::move(options), std::move(sink));
  }
};

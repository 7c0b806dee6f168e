// RedisPipeline against a real redis-server: callers on many threads write their own commands
// onto the one connection while its thread reads the replies, so what is checked is that every
// caller gets its own reply (none lost, none swapped, each thread's in its order), and that a
// server gone and back fails what was owed and then serves again on a fresh connection.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "redis_pipeline.h"
#include "redis_store.h"
#include "redis_test_server.h"
#include "thread_names.h"

using podworker::endpoint::RedisPipeline;
using podworker::endpoint::RedisReply;
using podworker::test::RedisTestServer;
using podworker::test::threads_named;

namespace {

// Counts completions and lets the test wait for a number of them, bounded.
struct Completions {
  std::mutex mu;
  std::condition_variable cv;
  int done = 0;
  void add() {
    std::lock_guard lock(mu);
    ++done;
    cv.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(20), [&] { return done >= n; });
  }
};

}  // namespace

TEST_CASE("redis pipeline: commands from many threads at once each get their own reply, in order") {
  RedisTestServer redis;
  RedisPipeline pipeline(redis.address(), std::chrono::seconds(5));
  constexpr int kThreads = 8;
  constexpr int kPerThread = 300;
  Completions completions;
  std::atomic<int> wrong{0};
  std::vector<std::vector<long long>> seen(kThreads);
  std::mutex seen_mu;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        const std::string key = "counter:" + std::to_string(t);
        for (int i = 0; i < kPerThread; ++i) {
          // Each thread's own counter: its replies must come back as 1, 2, 3, ... in its order.
          pipeline.send({"INCR", key}, [&, t](RedisReply r, std::exception_ptr error) {
            if (error || !r || r->type != REDIS_REPLY_INTEGER) {
              ++wrong;
            } else {
              std::lock_guard lock(seen_mu);
              seen[static_cast<std::size_t>(t)].push_back(r->integer);
            }
            completions.add();
          });
        }
      });
    }
  }
  REQUIRE(completions.wait_for(kThreads * kPerThread));
  CHECK(wrong.load() == 0);
  for (int t = 0; t < kThreads; ++t) {
    const auto& values = seen[static_cast<std::size_t>(t)];
    REQUIRE(values.size() == static_cast<std::size_t>(kPerThread));
    bool in_order = true;
    for (int i = 0; i < kPerThread; ++i)
      in_order = in_order && values[static_cast<std::size_t>(i)] == i + 1;
    CHECK_MESSAGE(in_order, "thread " << t << "'s replies out of order or swapped");
  }
}

TEST_CASE("redis pipeline: a server gone fails the commands owed; one back is used again") {
  RedisTestServer redis;
  RedisPipeline pipeline(redis.address(), std::chrono::seconds(5));
  auto run = [&](std::vector<std::string> args) {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    bool failed = false;
    std::string text;
    pipeline.send(std::move(args), [&](RedisReply r, std::exception_ptr error) {
      std::lock_guard lock(mu);
      failed = error != nullptr;
      if (r) text = std::string(podworker::endpoint::reply_text(*r));
      done = true;
      cv.notify_all();
    });
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return done; }));
    return std::pair{failed, text};
  };
  CHECK(run({"SET", "k", "v"}) == std::pair{false, std::string("OK")});
  redis.restart();
  // The old connection is closed by the server: the pipeline notices (its reader sees the end),
  // or the first command after it fails; either way a command after that succeeds.
  bool served = false;
  for (int attempt = 0; attempt < 3 && !served; ++attempt) served = !run({"PING"}).first;
  CHECK(served);
  CHECK(run({"PING"}) == std::pair{false, std::string("PONG")});
}

TEST_CASE("redis store: its reply reader and its subscriber carry names (top -H, perf)") {
  RedisTestServer redis;
  const std::size_t readers = threads_named("pw-redis-reply");
  const std::size_t subscribers = threads_named("pw-redis-sub");
  {
    podworker::endpoint::RedisStore store(redis.address(), "names", {}, nullptr);
    // Each thread names itself as it starts: looked for until it has.
    CHECK(podworker::test::eventually([&] {
      return threads_named("pw-redis-reply") == readers + 1 &&
             threads_named("pw-redis-sub") == subscribers + 1;
    }));
  }
  CHECK(threads_named("pw-redis-reply") == readers);
}

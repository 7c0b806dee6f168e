// Continuous batching: concurrent requests give the same tokens as requests run alone.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "llm/cpu_backend.h"
#include "llm/engine.h"
#include "test_model_fixture.h"

using namespace podworker;

namespace {

std::unique_ptr<llm::Engine> small_engine(int max_sequences = 4, int max_queued_tokens = 64) {
  const auto weights = testing::load_weights(testing::generated_model_path(testing::small_spec(), "q4_1"));
  llm::BackendOptions o;
  o.threads = 2;
  o.max_sequences = max_sequences;
  o.max_context = 128;
  llm::EngineOptions e;
  e.prefill_chunk = 5;  // several chunks per prompt, so prefill interleaves with decoding
  e.max_queued_tokens = max_queued_tokens;
  return std::make_unique<llm::Engine>(llm::make_cpu_backend(weights, o), e);
}

std::vector<std::int32_t> run(llm::Engine& engine, const llm::GenerationRequest& r, llm::GenerationStats* stats = nullptr) {
  std::vector<std::int32_t> out;
  const auto s = engine.generate(r, [&](std::int32_t t) {
    out.push_back(t);
    return true;
  });
  if (stats) *stats = s;
  return out;
}

llm::GenerationRequest request(int i, int max_tokens) {
  llm::GenerationRequest r;
  for (int j = 0; j < 3 + 4 * i; ++j) r.prompt.push_back((j * 31 + i * 7) % 200 + 10);
  r.max_tokens = max_tokens;
  r.sampling = {i % 2 ? 0.8f : 0.0f, 20, 0.9f, static_cast<std::uint64_t>(i)};
  return r;
}

}  // namespace

TEST_CASE("concurrent requests produce what each produces alone") {
  auto engine = small_engine(3);  // 6 requests on 3 slots: some wait for a slot
  std::vector<std::vector<std::int32_t>> alone;
  for (int i = 0; i < 6; ++i) {
    llm::GenerationStats st;
    alone.push_back(run(*engine, request(i, 12 + i), &st));
    CHECK(st.finish_reason == llm::FinishReason::length);
    CHECK(st.output_tokens == 12 + i);
    CHECK(st.input_tokens == 3 + 4 * i);
  }
  std::vector<std::vector<std::int32_t>> together(6);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 6; ++i) threads.emplace_back([&, i] { together[static_cast<std::size_t>(i)] = run(*engine, request(i, 12 + i)); });
  }
  for (int i = 0; i < 6; ++i) CHECK(together[static_cast<std::size_t>(i)] == alone[static_cast<std::size_t>(i)]);
}

TEST_CASE("cancellation and a callback returning false end the generation at the next token") {
  auto engine = small_engine();
  std::stop_source stop;
  int seen = 0;
  const auto st = engine->generate(request(1, 100), [&](std::int32_t) {
    if (++seen == 3) stop.request_stop();
    return true;
  }, stop.get_token());
  CHECK(st.finish_reason == llm::FinishReason::cancelled);
  CHECK(seen == 3);
  int count = 0;
  const auto st2 = engine->generate(request(2, 100), [&](std::int32_t) { return ++count < 4; });
  CHECK(st2.finish_reason == llm::FinishReason::stop);
  CHECK(count == 4);
  // The engine still serves requests afterwards.
  CHECK(run(*engine, request(0, 5)).size() == 5);
}

TEST_CASE("engine rejects impossible requests") {
  auto engine = small_engine();
  llm::GenerationRequest empty;
  CHECK_THROWS_AS(engine->generate(empty, [](std::int32_t) { return true; }), std::invalid_argument);
  llm::GenerationRequest huge;
  huge.prompt.assign(500, 1);
  CHECK_THROWS_AS(engine->generate(huge, [](std::int32_t) { return true; }), std::invalid_argument);
  llm::GenerationRequest zero = request(0, 0);
  CHECK_THROWS_AS(engine->generate(zero, [](std::int32_t) { return true; }), std::invalid_argument);
}

TEST_CASE("a stalled consumer pauses only its own sequence, at max_queued_tokens") {
  auto engine = small_engine(2, 3);
  const auto alone_slow = run(*engine, request(3, 40));
  const auto alone_fast = run(*engine, request(2, 30));
  REQUIRE(alone_slow.size() == 40);

  std::mutex m;
  std::condition_variable cv;
  bool first_seen = false, release = false;
  std::vector<std::int32_t> slow;
  llm::GenerationStats slow_stats;
  std::jthread consumer([&] {
    slow_stats = engine->generate(request(3, 40), [&](std::int32_t t) {
      slow.push_back(t);
      if (slow.size() == 1) {
        // Stall on the first token until the other request has run to its end.
        std::unique_lock lock(m);
        first_seen = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
      }
      return true;
    });
  });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return first_seen; });
  }
  // 30 decode steps for this request while the stalled one may only run 3 tokens ahead.
  llm::GenerationStats fast_stats;
  CHECK(run(*engine, request(2, 30), &fast_stats) == alone_fast);
  CHECK(fast_stats.peak_queued_tokens <= 3);
  {
    std::lock_guard lock(m);
    release = true;
  }
  cv.notify_all();
  consumer.join();
  CHECK(slow == alone_slow);  // pausing and resuming changes nothing in the output
  CHECK(slow_stats.finish_reason == llm::FinishReason::length);
  CHECK(slow_stats.peak_queued_tokens == 3);
}

TEST_CASE("a request cancelled while waiting for a slot ends at once, even when every slot is paused") {
  auto engine = small_engine(1, 2);  // one slot, paused after two undelivered tokens
  std::mutex m;
  std::condition_variable cv;
  bool first_seen = false, release = false;
  std::jthread holder([&] {
    (void)engine->generate(request(1, 30), [&](std::int32_t) {
      std::unique_lock lock(m);
      first_seen = true;
      cv.notify_all();
      cv.wait(lock, [&] { return release; });  // stall: the only slot stays taken and paused
      return true;
    });
  });
  {
    std::unique_lock lock(m);
    cv.wait(lock, [&] { return first_seen; });
  }
  std::stop_source cancel;
  llm::GenerationStats stats;
  int tokens = 0;
  std::atomic<bool> returned{false};
  std::jthread waiter([&] {
    stats = engine->generate(
        request(2, 10),
        [&](std::int32_t) {
          ++tokens;
          return true;
        },
        cancel.get_token());
    returned = true;
  });
  cancel.request_stop();
  waiter.join();  // hangs here (until the holder finishes) if the cancellation did not wake the scheduler
  CHECK(returned);
  {
    std::lock_guard lock(m);
    CHECK(!release);  // it ended while the slot was still held
    release = true;
  }
  cv.notify_all();
  holder.join();
  CHECK(tokens == 0);
  CHECK(stats.finish_reason == llm::FinishReason::cancelled);
}

// The worker's one deadline thread: a deadline stops its job as timed_out, a withdrawn one never
// fires, and deadlines fire in time order whatever order they were registered in.
#include "deadline_watch.h"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>
#include <vector>

using podworker::StopReason;
using podworker::worker::DeadlineWatch;
using podworker::worker::JobControl;
using namespace std::chrono_literals;

namespace {

// Waits (up to 5 s) for `control` to be stopped; true when it was.
bool stopped_within(const JobControl& control, std::chrono::milliseconds limit = 5000ms) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!control.token().stop_requested()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

}  // namespace

TEST_CASE("a deadline stops its job as timed out, once it has passed") {
  DeadlineWatch watch;
  JobControl control;
  const auto start = DeadlineWatch::Clock::now();
  auto entry = watch.add(control, start + 30ms);
  REQUIRE(stopped_within(control));
  CHECK(DeadlineWatch::Clock::now() - start >= 30ms);
  CHECK(control.reason() == StopReason::timed_out);
  CHECK(watch.pending() == 0);
}

TEST_CASE("a withdrawn deadline never fires, and a stop given first keeps its reason") {
  DeadlineWatch watch;
  JobControl withdrawn, cancelled;
  {
    auto entry = watch.add(withdrawn, DeadlineWatch::Clock::now() + 20ms);
    CHECK(watch.pending() == 1);
  }
  CHECK(watch.pending() == 0);
  cancelled.stop(StopReason::cancelled);
  auto entry = watch.add(cancelled, DeadlineWatch::Clock::now() + 1ms);
  std::this_thread::sleep_for(60ms);
  CHECK_FALSE(withdrawn.token().stop_requested());
  CHECK(cancelled.reason() == StopReason::cancelled);
}

TEST_CASE("deadlines fire in time order, an earlier one added later wakes the thread") {
  DeadlineWatch watch;
  JobControl late, early;
  auto late_entry = watch.add(late, DeadlineWatch::Clock::now() + 10s);
  auto early_entry = watch.add(early, DeadlineWatch::Clock::now() + 20ms);
  REQUIRE(stopped_within(early, 2000ms));
  CHECK_FALSE(late.token().stop_requested());
  CHECK(watch.pending() == 1);
}

TEST_CASE("many jobs share the one watch") {
  DeadlineWatch watch;
  std::vector<JobControl> controls(200);
  std::vector<DeadlineWatch::Entry> entries;
  const auto now = DeadlineWatch::Clock::now();
  for (std::size_t i = 0; i < controls.size(); ++i) {
    // Even ones far off (withdrawn below), odd ones soon.
    entries.push_back(watch.add(controls[i], now + (i % 2 == 0 ? 60s : 10ms)));
  }
  for (std::size_t i = 1; i < controls.size(); i += 2) REQUIRE(stopped_within(controls[i]));
  entries.clear();
  CHECK(watch.pending() == 0);
  for (std::size_t i = 0; i < controls.size(); i += 2)
    CHECK_FALSE(controls[i].token().stop_requested());
}

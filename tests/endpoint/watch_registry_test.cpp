// WatchRegistry on its own: the wake rules both stores rely on, without a store in between.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "watch_registry.h"

namespace pe = podworker::endpoint;

TEST_CASE("watch registry: one woken queue watch per queued job, longest waiting first") {
  pe::WatchRegistry r;
  int woken[4] = {0, 0, 0, 0};
  std::vector<pe::Subscription> subs;
  for (int i = 0; i < 4; ++i)
    subs.push_back(r.watch(pe::Topic::queue, {}, [&woken, i] { ++woken[i]; }));
  CHECK(r.takers() == 4);
  CHECK(r.woken_takers() == 0);
  r.set_queued(2);
  CHECK(woken[0] == 1);
  CHECK(woken[1] == 1);
  CHECK(woken[2] + woken[3] == 0);
  // The same count again (a repeated note) wakes nobody more; neither does a queue() fire.
  r.set_queued(2);
  r.fire(pe::Topic::queue, {});
  CHECK(woken[0] + woken[1] + woken[2] + woken[3] == 2);
  // Both jobs taken: the woken ones leave and hand nothing on.
  r.set_queued(0);
  subs[0].reset();
  subs[1].reset();
  CHECK(woken[2] + woken[3] == 0);
  CHECK(r.woken_takers() == 0);
  CHECK(r.takers() == 2);
}

TEST_CASE("watch registry: a woken queue watch that leaves without the job passes the wake on") {
  pe::WatchRegistry r;
  int a = 0, b = 0, c = 0;
  auto sa = r.watch(pe::Topic::queue, {}, [&a] { ++a; });
  auto sb = r.watch(pe::Topic::queue, {}, [&b] { ++b; });
  r.set_queued(1);
  CHECK(a == 1);
  CHECK(b == 0);
  sa.reset();  // its client had gone
  CHECK(b == 1);
  // A newcomer is not woken by registering, only by a job no one is woken for.
  auto sc = r.watch(pe::Topic::queue, {}, [&c] { ++c; });
  CHECK(c == 0);
  r.set_queued(2);
  CHECK(c == 1);
  CHECK(r.woken_takers() == 2);
}

TEST_CASE("watch registry: job and stop watches fire by key; fire_all reaches every watch") {
  pe::WatchRegistry r;
  int job_a = 0, job_a2 = 0, job_b = 0, stop_a = 0, queue = 0;
  auto s1 = r.watch(pe::Topic::job, "a", [&] { ++job_a; });
  auto s2 = r.watch(pe::Topic::job, "a", [&] { ++job_a2; });
  auto s3 = r.watch(pe::Topic::job, "b", [&] { ++job_b; });
  auto s4 = r.watch(pe::Topic::stop, "a", [&] { ++stop_a; });  // same key, other topic
  auto s5 = r.watch(pe::Topic::queue, {}, [&] { ++queue; });
  r.fire(pe::Topic::job, "a");
  CHECK(job_a == 1);
  CHECK(job_a2 == 1);
  CHECK(job_b == 0);
  CHECK(stop_a == 0);
  r.fire(pe::Topic::stop, "a");
  CHECK(stop_a == 1);
  s1.reset();
  r.fire(pe::Topic::job, "a");
  CHECK(job_a == 1);
  CHECK(job_a2 == 2);
  r.fire_all();
  CHECK(job_a == 1);
  CHECK(job_a2 == 3);
  CHECK(job_b == 1);
  CHECK(stop_a == 2);
  CHECK(queue == 1);
  // fire_all counted the queue watch as woken: its leaving hands on nothing (no job is queued).
  s5.reset();
  CHECK(r.woken_takers() == 0);
}

TEST_CASE("watch registry: watched() says whether a job or stop watch of the key is in place") {
  pe::WatchRegistry r;
  CHECK_FALSE(r.watched(pe::Topic::job, "j"));
  pe::Subscription a = r.watch(pe::Topic::job, "j", [] {});
  pe::Subscription b = r.watch(pe::Topic::job, "j", [] {});
  CHECK(r.watched(pe::Topic::job, "j"));
  CHECK_FALSE(r.watched(pe::Topic::stop, "j"));  // the same key under another topic
  CHECK_FALSE(r.watched(pe::Topic::job, "k"));
  a.reset();
  CHECK(r.watched(pe::Topic::job, "j"));
  b.reset();
  CHECK_FALSE(r.watched(pe::Topic::job, "j"));
}

TEST_CASE("watch registry: watches come and go on other threads while jobs are counted") {
  pe::WatchRegistry r;
  {
    std::vector<std::jthread> pollers;
    for (int t = 0; t < 4; ++t) {
      pollers.emplace_back([&] {
        for (int i = 0; i < 2000; ++i) {
          auto s = r.watch(pe::Topic::queue, {}, [] {});
          auto j = r.watch(pe::Topic::job, "x", [] {});
        }
      });
    }
    for (int i = 0; i < 2000; ++i) {
      r.set_queued(static_cast<std::size_t>(i % 3));
      r.fire(pe::Topic::job, "x");
    }
  }
  // Every wake was given back as its watch left: the counts are whole again, and the next job
  // wakes the next poller.
  CHECK(r.takers() == 0);
  CHECK(r.woken_takers() == 0);
  int next = 0;
  auto s = r.watch(pe::Topic::queue, {}, [&next] { ++next; });
  r.set_queued(5);
  CHECK(next == 1);
}

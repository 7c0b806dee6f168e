// The Prometheus writer: exact text for each metric type, escaping, get-or-create registration,
// and counts that stay exact under concurrent updates. The compat tests parse real scrapes with
// the official Python parser on top of this.
#include <doctest/doctest.h>

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "podworker/metrics.h"

using namespace podworker::metrics;

TEST_CASE("counter and gauge families render HELP, TYPE and one line per label set") {
  Registry r;
  r.counter("podworker_jobs_total", "Jobs finished.", {{"outcome", "completed"}}).inc(3);
  r.counter("podworker_jobs_total", "Jobs finished.", {{"outcome", "failed"}}).inc();
  r.gauge("podworker_queue_depth", "Jobs queued.").set(7);
  CHECK(r.render() ==
        "# HELP podworker_jobs_total Jobs finished.\n"
        "# TYPE podworker_jobs_total counter\n"
        "podworker_jobs_total{outcome=\"completed\"} 3\n"
        "podworker_jobs_total{outcome=\"failed\"} 1\n"
        "# HELP podworker_queue_depth Jobs queued.\n"
        "# TYPE podworker_queue_depth gauge\n"
        "podworker_queue_depth 7\n");
}

TEST_CASE("histogram buckets are cumulative, end at +Inf and agree with _count") {
  Registry r;
  constexpr double bounds[] = {0.1, 1};
  Histogram& h = r.histogram("podworker_wait_seconds", "Wait.", bounds, {{"op", "take"}});
  h.observe(0.05);
  h.observe(0.1);  // on a bound: counted in that bucket (le means <=)
  h.observe(0.5);
  h.observe(20);
  CHECK(r.render() ==
        "# HELP podworker_wait_seconds Wait.\n"
        "# TYPE podworker_wait_seconds histogram\n"
        "podworker_wait_seconds_bucket{op=\"take\",le=\"0.1\"} 2\n"
        "podworker_wait_seconds_bucket{op=\"take\",le=\"1\"} 3\n"
        "podworker_wait_seconds_bucket{op=\"take\",le=\"+Inf\"} 4\n"
        "podworker_wait_seconds_sum{op=\"take\"} 20.65\n"
        "podworker_wait_seconds_count{op=\"take\"} 4\n");
}

TEST_CASE("an empty histogram still writes every bucket, a zero sum and count") {
  Registry r;
  constexpr double bounds[] = {0.5};
  r.histogram("h_seconds", "H.", bounds);
  CHECK(r.render() ==
        "# HELP h_seconds H.\n# TYPE h_seconds histogram\n"
        "h_seconds_bucket{le=\"0.5\"} 0\nh_seconds_bucket{le=\"+Inf\"} 0\n"
        "h_seconds_sum 0\nh_seconds_count 0\n");
}

TEST_CASE("label values and help text are escaped as the text format says") {
  CHECK(escape_label_value("a\\b\"c\nd") == "a\\\\b\\\"c\\nd");
  CHECK(escape_help("x\\y\nz \"q\"") == "x\\\\y\\nz \"q\"");
  Registry r;
  r.counter("c_total", "Line one\nline two.", {{"route", "/v2/\"x\""}}).inc();
  CHECK(r.render() ==
        "# HELP c_total Line one\\nline two.\n# TYPE c_total counter\n"
        "c_total{route=\"/v2/\\\"x\\\"\"} 1\n");
}

TEST_CASE("numbers are written shortest round-trip, with the special values spelled out") {
  CHECK(format_value(0) == "0");
  CHECK(format_value(0.1) == "0.1");
  CHECK(std::stod(format_value(1e-4)) == 1e-4);  // "1e-04": shorter, and as valid
  CHECK(format_value(2.5) == "2.5");
  CHECK(format_value(1234567) == "1234567");
  CHECK(format_value(std::numeric_limits<double>::infinity()) == "+Inf");
  CHECK(format_value(-std::numeric_limits<double>::infinity()) == "-Inf");
  CHECK(format_value(std::nan("")) == "NaN");
}

TEST_CASE("registering again returns the first metric; a mismatch or a bad name throws") {
  Registry r;
  Counter& a = r.counter("x_total", "X.", {{"k", "v"}});
  Counter& b = r.counter("x_total", "X.", {{"k", "v"}});
  CHECK(&a == &b);
  CHECK(&r.counter("x_total", "X.", {{"k", "w"}}) != &a);
  CHECK_THROWS_AS(r.gauge("x_total", "X."), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("x_total", "Other help."), std::invalid_argument);
  constexpr double one[] = {1};
  constexpr double two[] = {2};
  r.histogram("y_seconds", "Y.", one);
  CHECK_THROWS_AS(r.histogram("y_seconds", "Y.", two), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("bad-name", "B."), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("9lives", "B."), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok_total", "B.", {{"le", "1"}}), std::invalid_argument);
  CHECK_THROWS_AS(r.counter("ok_total", "B.", {{"a:b", "1"}}), std::invalid_argument);
  constexpr double unsorted[] = {1, 0.5};
  CHECK_THROWS_AS(r.histogram("z_seconds", "Z.", unsorted), std::invalid_argument);
}

TEST_CASE("collectors run before each render and set gauges from their source") {
  Registry r;
  Gauge& depth = r.gauge("depth", "Depth.");
  int source = 4;
  int runs = 0;
  r.on_collect([&] {
    ++runs;
    depth.set(source);
  });
  CHECK(r.render().find("depth 4\n") != std::string::npos);
  source = 9;
  CHECK(r.render().find("depth 9\n") != std::string::npos);
  CHECK(runs == 2);
}

TEST_CASE("concurrent updates lose nothing, and a scrape during them is well-formed") {
  Registry r;
  Counter& c = r.counter("n_total", "N.");
  Gauge& g = r.gauge("g", "G.");
  constexpr double bounds[] = {0.5};
  Histogram& h = r.histogram("h_seconds", "H.", bounds);
  constexpr int kThreads = 4;
  constexpr int kEach = 100000;
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          c.inc();
          g.add(1);
          h.observe(t % 2 == 0 ? 0.25 : 1.0);
        }
      });
    }
    for (int i = 0; i < 20; ++i) {
      const std::string text = r.render();
      CHECK(text.find("h_seconds_count") != std::string::npos);
    }
  }
  CHECK(c.value() == std::uint64_t{kThreads} * kEach);
  CHECK(g.value() == doctest::Approx(kThreads * kEach));
  const Histogram::Snapshot s = h.snapshot();
  CHECK(s.count == std::uint64_t{kThreads} * kEach);
  CHECK(s.cumulative[0] == std::uint64_t{kThreads / 2} * kEach);
  CHECK(s.sum == doctest::Approx(kEach * (2 * 0.25 + 2 * 1.0)));
}

TEST_CASE("the process registry is one registry") {
  CHECK(&process_registry() == &process_registry());
}

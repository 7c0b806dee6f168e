// Prometheus metrics: counters, gauges and histograms, and a registry that writes them in the
// Prometheus text exposition format (version 0.0.4), which every Prometheus-compatible scraper
// reads. Updating a metric is one or two relaxed atomic operations and never takes a lock, so the
// job path pays next to nothing; only registering a metric and rendering a scrape lock the
// registry.
//
//   podworker::metrics::Registry registry;
//   auto& done = registry.counter("podworker_jobs_total", "Jobs finished.", {{"outcome", "ok"}});
//   auto& took = registry.histogram("podworker_job_seconds", "Job duration.",
//   metrics::kLatencyBuckets); done.inc(); took.observe(0.012); std::string text =
//   registry.render();   // what GET /metrics answers
//
// Registering the same name and labels again returns the metric registered first, so parts of a
// program (or several instances of one part) can share a family without knowing of each other.
// A name registered with another type, help text or bucket layout is a programming error: throws.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace podworker::metrics {

// Label name/value pairs, in the order they are written.
using Labels = std::vector<std::pair<std::string, std::string>>;

// Bucket upper bounds (seconds) for request and store latencies: 100 µs to 10 s.
inline constexpr double kLatencyBuckets[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                             0.01,   0.025,   0.05,   0.1,   0.25,   0.5,
                                             1,      2.5,     5,      10};
// Bucket upper bounds (seconds) for whole jobs, from a queue wait to a long generation.
inline constexpr double kJobBuckets[] = {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                         2.5,   5,     10,   30,    60,   120, 300,  600};

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(double v) noexcept { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Cumulative counts are computed at render time; observe() touches one bucket, the count and the
// sum. A scrape racing an observe() may see the count one ahead of the buckets for that instant:
// Prometheus tolerates it, and a lock on every observation would not be worth it.
class Histogram {
 public:
  // `bounds` strictly increasing and finite; +Inf is implied.
  explicit Histogram(std::span<const double> bounds);
  void observe(double v) noexcept;
  // Seconds since `start`, observed.
  template <class TimePoint>
  void observe_since(TimePoint start) noexcept {
    observe(std::chrono::duration<double>(TimePoint::clock::now() - start).count());
  }

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // per bound, then +Inf
    std::uint64_t count = 0;
    double sum = 0;
  };
  Snapshot snapshot() const;
  std::span<const double> bounds() const { return bounds_; }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // per bound, then +Inf
  std::atomic<std::uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // References stay valid for the registry's lifetime.
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& histogram(std::string_view name, std::string_view help, std::span<const double> bounds,
                       const Labels& labels = {});
  // Runs before every render(), under no lock of the registry's: for gauges whose value is cheaper
  // to read at scrape time than to keep current (a store's queue depth). What it refers to must
  // live as long as the registry: owners put the registry beside what its collectors read.
  void on_collect(std::function<void()> collect);

  // The text exposition format: families in name order, # HELP and # TYPE first.
  std::string render() const;

 private:
  enum class Type : std::uint8_t { counter, gauge, histogram };
  struct Child {
    Labels labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
  };
  struct Family {
    Type type;
    std::string help;
    std::vector<double> bounds;
    std::vector<Child> children;
  };
  Family& family(std::string_view name, std::string_view help, Type type,
                 std::span<const double> bounds);
  static Child* find(Family& family, const Labels& labels);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
  // Deques: growing one never moves what a reference handed out points to.
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
  std::vector<std::function<void()>> collectors_;
};

// The process's registry, for parts that exist once per process (a worker's job loop, a handler's
// model): the worker serves it on --metrics-port, and an embedded endpoint serves it beside its
// own.
Registry& process_registry();

// Text-format escaping: label values escape backslash, double quote and newline; help text
// backslash and newline. Numbers are written shortest-round-trip, with +Inf, -Inf and NaN.
std::string escape_label_value(std::string_view value);
std::string escape_help(std::string_view help);
std::string format_value(double value);

}  // namespace podworker::metrics

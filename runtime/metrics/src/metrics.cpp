#include "podworker/metrics.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace podworker::metrics {

namespace {

void append_labels(std::string& out, const Labels& labels, std::string_view le = {}) {
  if (labels.empty() && le.empty()) return;
  out += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!first) out += ',';
    first = false;
    out += name;
    out += "=\"";
    out += escape_label_value(value);
    out += '"';
  }
  if (!le.empty()) {
    if (!first) out += ',';
    out += "le=\"";
    out += le;
    out += '"';
  }
  out += '}';
}

// Metric and label names: [a-zA-Z_:][a-zA-Z0-9_:]* (labels without ':'); checked at registration,
// where a bad name is a programming error, so a scrape never carries one.
bool valid_name(std::string_view name, bool label) {
  if (name.empty()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (!label && c == ':');
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

}  // namespace

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view help) {
  std::string out;
  out.reserve(help.size());
  for (const char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  return {buf, r.ptr};
}

Histogram::Histogram(std::span<const double> bounds)
    : bounds_(bounds.begin(), bounds.end()),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds.size() + 1)) {
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    if (!std::isfinite(bounds_[i]) || (i > 0 && bounds_[i] <= bounds_[i - 1])) {
      throw std::invalid_argument("histogram bounds must be finite and strictly increasing");
    }
  }
}

void Histogram::observe(double v) noexcept {
  // A dozen or so bounds: a linear scan beats a binary search's branches.
  std::size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  s.cumulative.resize(bounds_.size() + 1);
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative[i] = running;
  }
  // The +Inf bucket is the count, by definition: keep them equal even mid-observe.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

Registry::Family& Registry::family(std::string_view name, std::string_view help, Type type,
                                   std::span<const double> bounds) {
  if (!valid_name(name, false))
    throw std::invalid_argument("bad metric name '" + std::string(name) + "'");
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_
             .emplace(std::string(name),
                      Family{type, std::string(help), {bounds.begin(), bounds.end()}, {}})
             .first;
  }
  Family& f = it->second;
  if (f.type != type || f.help != help ||
      !std::equal(f.bounds.begin(), f.bounds.end(), bounds.begin(), bounds.end())) {
    throw std::invalid_argument("metric '" + std::string(name) +
                                "' registered twice with different type, help or buckets");
  }
  return f;
}

Registry::Child* Registry::find(Family& family, const Labels& labels) {
  for (const auto& [label, value] : labels) {
    if (!valid_name(label, true) || label == "le")
      throw std::invalid_argument("bad label name '" + label + "'");
  }
  for (Child& c : family.children) {
    if (c.labels == labels) return &c;
  }
  return nullptr;
}

Counter& Registry::counter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, Type::counter, {});
  if (Child* c = find(f, labels)) return *c->counter;
  Counter& made = counters_.emplace_back();
  f.children.push_back({labels, &made, nullptr, nullptr});
  return made;
}

Gauge& Registry::gauge(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, Type::gauge, {});
  if (Child* c = find(f, labels)) return *c->gauge;
  Gauge& made = gauges_.emplace_back();
  f.children.push_back({labels, nullptr, &made, nullptr});
  return made;
}

Histogram& Registry::histogram(std::string_view name, std::string_view help,
                               std::span<const double> bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  Family& f = family(name, help, Type::histogram, bounds);
  if (Child* c = find(f, labels)) return *c->histogram;
  Histogram& made = histograms_.emplace_back(bounds);
  f.children.push_back({labels, nullptr, nullptr, &made});
  return made;
}

void Registry::on_collect(std::function<void()> collect) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collect));
}

std::string Registry::render() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard lock(mu_);
    collectors = collectors_;
  }
  for (const auto& collect : collectors) collect();

  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    if (f.children.empty()) continue;
    out += "# HELP " + name + ' ' + escape_help(f.help) + '\n';
    out += "# TYPE " + name + ' ';
    out += f.type == Type::counter ? "counter" : f.type == Type::gauge ? "gauge" : "histogram";
    out += '\n';
    for (const Child& c : f.children) {
      if (c.counter != nullptr) {
        out += name;
        append_labels(out, c.labels);
        out += ' ' + std::to_string(c.counter->value()) + '\n';
      } else if (c.gauge != nullptr) {
        out += name;
        append_labels(out, c.labels);
        out += ' ' + format_value(c.gauge->value()) + '\n';
      } else {
        const Histogram::Snapshot s = c.histogram->snapshot();
        for (std::size_t i = 0; i <= s.bounds.size(); ++i) {
          out += name + "_bucket";
          append_labels(out, c.labels, i < s.bounds.size() ? format_value(s.bounds[i]) : "+Inf");
          out += ' ' + std::to_string(s.cumulative[i]) + '\n';
        }
        out += name + "_sum";
        append_labels(out, c.labels);
        out += ' ' + format_value(s.sum) + '\n';
        out += name + "_count";
        append_labels(out, c.labels);
        out += ' ' + std::to_string(s.count) + '\n';
      }
    }
  }
  return out;
}

Registry& process_registry() {
  static Registry registry;
  return registry;
}

}  // namespace podworker::metrics

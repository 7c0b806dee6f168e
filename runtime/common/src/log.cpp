#include "podworker/log.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>

#include "podworker/json.h"

namespace podworker::log {
namespace {
std::atomic<int> g_level{static_cast<int>(Level::info)};
std::atomic<bool> g_json{false};
std::mutex g_write_mutex;

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}
}  // namespace

Level parse_level(std::string_view name, Level fallback) {
  const std::string u = upper(name);
  if (u == "ERROR") return Level::error;
  if (u == "WARN" || u == "WARNING") return Level::warn;
  if (u == "INFO") return Level::info;
  if (u == "DEBUG") return Level::debug;
  if (u == "TRACE") return Level::trace;
  return fallback;
}

std::string_view level_name(Level level) {
  switch (level) {
    case Level::error: return "ERROR";
    case Level::warn: return "WARN";
    case Level::info: return "INFO";
    case Level::debug: return "DEBUG";
    case Level::trace: return "TRACE";
  }
  return "INFO";
}

void set_level(Level level) { g_level.store(static_cast<int>(level)); }
Level level() { return static_cast<Level>(g_level.load()); }
void set_json(bool on) { g_json.store(on); }
bool json() { return g_json.load(); }

void configure_from_env() {
  if (const char* lvl = std::getenv("RUNPOD_LOG_LEVEL"); lvl != nullptr && *lvl != '\0') {
    set_level(parse_level(lvl, level()));
  }
  if (const char* ep = std::getenv("RUNPOD_ENDPOINT_ID"); ep != nullptr && *ep != '\0') {
    set_json(true);
  }
}

bool enabled(Level lvl) { return static_cast<int>(lvl) <= g_level.load(std::memory_order_relaxed); }

void write(Level lvl, std::string_view message, std::string_view job_id) {
  if (!enabled(lvl)) return;
  std::string line;
  if (json()) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    w.Key("requestId");
    if (job_id.empty()) {
      w.Null();
    } else {
      w.String(job_id.data(), static_cast<rapidjson::SizeType>(job_id.size()));
    }
    w.Key("message");
    w.String(message.data(), static_cast<rapidjson::SizeType>(message.size()));
    w.Key("level");
    const auto name = level_name(lvl);
    w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    w.EndObject();
    line.assign(buf.GetString(), buf.GetSize());
  } else {
    const auto now = std::chrono::system_clock::now();
    const std::time_t t = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::snprintf(stamp, sizeof stamp, "%02d:%02d:%02d.%03d", tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    // Appends only: GCC 12 at -O3 misreports chained `std::string + ...` as -Wrestrict.
    const auto name = level_name(lvl);
    line.reserve(sizeof stamp + name.size() + job_id.size() + message.size() + 8);
    line.append(stamp).append(" ").append(name).append(" ");
    if (!job_id.empty()) line.append("[").append(job_id).append("] ");
    line.append(message);
  }
  line += '\n';
  std::lock_guard lock(g_write_mutex);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);
}

}  // namespace podworker::log

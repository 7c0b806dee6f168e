// Logging shared by the worker, the endpoint and handlers.
// Two formats: readable lines for people, or one JSON object per line
// ({"requestId", "message", "level"}) when running on RunPod, whose log collector expects that.
#pragma once

#include <string>
#include <string_view>

namespace podworker::log {

enum class Level { error = 0, warn = 1, info = 2, debug = 3, trace = 4 };

// Parses ERROR/WARN/WARNING/INFO/DEBUG/TRACE (any case); nullopt-like: returns `fallback` when unknown.
Level parse_level(std::string_view name, Level fallback = Level::info);
std::string_view level_name(Level level);

void set_level(Level level);
Level level();
void set_json(bool json);
bool json();

// Configures level and format from RUNPOD_LOG_LEVEL and RUNPOD_ENDPOINT_ID.
void configure_from_env();

bool enabled(Level level);
// Writes one line to stdout; `job_id` empty means no job. Thread-safe: lines never interleave.
void write(Level level, std::string_view message, std::string_view job_id = {});

inline void error(std::string_view m, std::string_view job = {}) { write(Level::error, m, job); }
inline void warn(std::string_view m, std::string_view job = {}) { write(Level::warn, m, job); }
inline void info(std::string_view m, std::string_view job = {}) { write(Level::info, m, job); }
inline void debug(std::string_view m, std::string_view job = {}) {
  if (enabled(Level::debug)) write(Level::debug, m, job);
}
inline void trace(std::string_view m, std::string_view job = {}) {
  if (enabled(Level::trace)) write(Level::trace, m, job);
}

}  // namespace podworker::log

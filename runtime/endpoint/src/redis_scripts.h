// The Lua scripts of RedisStore: one per state transition, each run atomically by Redis, so
// replicas sharing one Redis never see half a transition. They are the functions of one Redis
// function library (Redis 7), loaded once, so the helpers they share are defined once. Every script
// gets the same leading arguments (kCommonArgs) and answers {result, notes, events, logs, ended}:
// the notes name the watches the change concerns (also PUBLISHed for the other replicas), the
// events are the HGETALL of jobs that ended with a webhook, the logs are (job id, message) pairs
// for the caller's log, and ended holds the records of jobs that ended COMPLETED or CANCELLED
// (final until they expire).
#pragma once

#include <array>
#include <cstddef>
#include <string_view>

namespace podworker::endpoint::redis_script {

enum class Id : std::size_t {
  submit,
  stream,
  read_stream,
  cancel,
  retry,
  purge,
  health,
  worker_begin,
  take,
  release,
  post_result,
  post_stream,
  ping,
  report_in_progress,
  take_stop,
  sweep,
  listeners,
  count_
};
inline constexpr std::size_t kCount = static_cast<std::size_t>(Id::count_);

// ARGV[1..7]: key prefix, origin (the store instance, so a replica skips its own publishes), now
// (wall-clock ms), retention ms, runsync retention ms, heartbeat grace ms, retry limit. A script's
// own arguments start at ARGV[8].
inline constexpr std::size_t kCommonArgs = 7;

// The source of the library that holds every script as a Redis function (FUNCTION LOAD REPLACE),
// and the function to FCALL for one of them.
std::string_view library();
std::string_view function_name(Id id);

}  // namespace podworker::endpoint::redis_script

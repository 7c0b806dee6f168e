// What every benchmark worker gets and how a /runsync reply counts as done, shared by the rows of
// bench_e2e's tables.
#pragma once

#include <map>
#include <string>

#include "http_load.h"
#include "podworker/json.h"

namespace podworker::bench {

// The RUNPOD_* variables a worker gets in production, shaped like production's templates.
inline std::map<std::string, std::string> worker_env(const Target& target, const std::string& ep,
                                                     const std::string& worker_id) {
  const std::string base =
      "http://" + target.host + ":" + std::to_string(target.port) + "/v2/" + ep;
  return {
      {"RUNPOD_WEBHOOK_GET_JOB", base + "/job-take/$ID?gpu=bench"},
      {"RUNPOD_WEBHOOK_POST_OUTPUT", base + "/job-done/$RUNPOD_POD_ID/$ID?gpu=bench"},
      {"RUNPOD_WEBHOOK_POST_STREAM", base + "/job-stream/$RUNPOD_POD_ID/$ID?gpu=bench"},
      {"RUNPOD_WEBHOOK_PING", base + "/ping/$RUNPOD_POD_ID?gpu=bench"},
      {"RUNPOD_POD_ID", worker_id},
      // Both workers log errors only, so neither pays for a log line per job.
      {"RUNPOD_LOG_LEVEL", "ERROR"},
      // The SDK's production start-up checks probe GPUs, disk and the internet; not measured here.
      {"RUNPOD_SKIP_GPU_CHECK", "true"},
      {"RUNPOD_SKIP_AUTO_SYSTEM_CHECKS", "true"},
      {"PYTHONUNBUFFERED", "1"},
  };
}

inline bool completed(const std::string& body) {
  try {
    const auto doc = podworker::json::parse_object(body);
    return podworker::json::get_string(doc, "status") == "COMPLETED" && doc.HasMember("output");
  } catch (const std::exception&) {
    return false;
  }
}

}  // namespace podworker::bench

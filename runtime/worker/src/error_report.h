// Turns the exception a handler threw into the protocol's error report.
#pragma once

#include <string>

namespace podworker::worker {

// Must be called inside a catch block: reads the in-flight exception and captures a backtrace of
// where it was caught (the frames through the handler that let it escape). Returns the JSON text
// of {error_type, error_message, error_traceback, hostname, worker_id, runpod_version}, which the
// result then carries as a string ({"error": "<this text>"}: encoded twice, like the SDK).
std::string current_exception_report(const std::string& hostname, const std::string& worker_id);

}  // namespace podworker::worker

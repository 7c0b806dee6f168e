#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

#include "basic_handlers.h"

namespace podworker::handlers {

Output sleep(Job& job) {
  const json::Value& input = job.input();
  const auto total = json::get_int(input, "ms", 1000);
  const auto step = json::get_int(input, "step_ms", 100);
  if (total < 0 || step <= 0) throw std::invalid_argument("\"ms\" must be >= 0 and \"step_ms\" > 0");

  json::Document update;
  update.SetObject();
  auto& a = update.GetAllocator();
  update.AddMember("slept_ms", 0, a);
  update.AddMember("total_ms", total, a);

  // Waits on the job's stop token, so a cancel or timeout ends the wait at once.
  std::mutex m;
  std::condition_variable_any cv;
  std::unique_lock lock(m);
  const auto start = std::chrono::steady_clock::now();
  std::int64_t slept = 0;
  while (slept < total) {
    const auto next = std::min(total, slept + step);
    const auto deadline = start + std::chrono::milliseconds(next);
    if (cv.wait_until(lock, job.stop_token(), deadline, [] { return false; }) ||
        job.stop_token().stop_requested()) {
      return Output::error("cancelled");  // not posted: the runtime posts nothing for stopped jobs
    }
    slept = next;
    update["slept_ms"].SetInt64(slept);
    if (slept < total) job.progress(update);
  }
  json::Document result;
  result.SetObject();
  result.AddMember("slept_ms", total, result.GetAllocator());
  return Output::ok(std::move(result));
}

}  // namespace podworker::handlers

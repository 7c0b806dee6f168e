// A job's progress updates, sent from their own thread so that Job::progress() returns at once.
// Latest wins: while one update is in flight, newer ones replace each other and only the newest
// is sent next. finish() drops an update not yet sent (the job's result supersedes it) and waits
// for the one in flight, so no progress post can land after, and overwrite, the final result.
#pragma once

#include <condition_variable>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "job_sink.h"

namespace podworker::worker {

class ProgressSender {
 public:
  ProgressSender(JobSink& sink, std::stop_token stop);
  ~ProgressSender();  // finish()
  ProgressSender(const ProgressSender&) = delete;
  ProgressSender& operator=(const ProgressSender&) = delete;

  // `body`: the whole post body. Never blocks on the network.
  void post(std::string body);
  void finish();

 private:
  void send_loop();

  JobSink& sink_;
  std::stop_token stop_;
  std::mutex mutex_;
  std::condition_variable_any changed_;
  std::optional<std::string> latest_;
  bool finishing_ = false;
  std::jthread sender_;  // started by the first update; last: joined before the members it uses go
};

}  // namespace podworker::worker

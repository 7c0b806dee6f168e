// The Emitter a streaming job's handler yields into: yield() copies the chunk into a buffer and
// returns; one sender thread per job posts the buffer in order, one post in flight at a time.
// Whatever is yielded while a post is in flight goes out merged in the next post (stream_merge.h),
// so a fast network sees a post per chunk and a slow one sees fewer, bigger posts: no timer.
//
// Memory is bounded by bytes: once the chunks yielded and not yet delivered reach
// buffer_bytes, yield() waits (only this job's handler thread; in textgen the engine then pauses
// just this sequence). A post that fails fails the job; after a stop nothing more is posted.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <thread>

#include "job_sink.h"
#include "podworker/handler.h"

namespace podworker::worker {

struct StreamSenderConfig {
  std::size_t max_post_bytes = 1024 * 1024;
  std::size_t buffer_bytes = 4 * 1024 * 1024;  // yielded, not yet delivered; then yield() waits
  bool aggregate = false;                      // keep every chunk for the final result
};

struct StreamStats {
  std::size_t chunks = 0;  // yields accepted
  std::size_t posts = 0;   // posts delivered
};

class StreamSender final : public Emitter {
 public:
  StreamSender(JobSink& sink, const Handler& rule, std::stop_token stop, StreamSenderConfig config,
               std::string job_id);
  ~StreamSender() override;  // finish()
  StreamSender(const StreamSender&) = delete;
  StreamSender& operator=(const StreamSender&) = delete;

  // Throws when an earlier post failed, or ChunkTooLarge for a chunk that no post can carry.
  void yield(const json::Value& chunk) override;

  // Delivers what is still buffered (nothing when stopped or failed) and ends the sender thread.
  // Safe to call twice.
  void finish();

  std::optional<std::string> failure() const;
  // Every chunk yielded, in order (config.aggregate only).
  json::Document& aggregate() { return aggregate_; }
  StreamStats stats() const;

 private:
  void fail(const std::string& why);
  void send_loop();

  JobSink& sink_;
  const Handler& rule_;
  std::stop_token stop_;
  StreamSenderConfig config_;
  std::string job_id_;
  json::Document aggregate_;  // handler thread only

  mutable std::mutex mutex_;
  std::condition_variable_any changed_;  // chunks buffered, delivered, failure, finish or stop
  // Chunks not yet taken by the sender, all in one document so that a small chunk costs its own
  // bytes, not an allocator each; the sender swaps the whole document out.
  json::Document pending_;
  std::size_t pending_bytes_ = 0;      // of pending_
  std::size_t undelivered_bytes_ = 0;  // pending_ plus the batch being posted
  bool finishing_ = false;
  std::string failure_;
  StreamStats stats_;
  std::jthread sender_;  // started by the first yield; last: joined before the members it uses go
};

}  // namespace podworker::worker

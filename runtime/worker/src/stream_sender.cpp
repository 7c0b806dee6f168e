#include "stream_sender.h"

#include <stdexcept>
#include <utility>
#include <vector>

#include "podworker/log.h"
#include "podworker/thread_name.h"
#include "stream_merge.h"
#include "stream_split.h"
#include "worker_metrics.h"

namespace podworker::worker {

StreamSender::StreamSender(JobSink& sink, const Handler& rule, std::stop_token stop,
                           StreamSenderConfig config, std::string job_id)
    : sink_(sink),
      rule_(rule),
      stop_(std::move(stop)),
      config_(config),
      job_id_(std::move(job_id)) {
  aggregate_.SetArray();
  pending_.SetArray();
}

StreamSender::~StreamSender() {
  finish();
}

void StreamSender::yield(const json::Value& chunk) {
  if (stop_.stop_requested()) return;  // nothing is posted for a stopped job
  if (auto why = failure()) throw std::runtime_error(*why);
  // What the chunk costs in the buffer: its post body's size when posted alone.
  std::size_t bytes = kOutputEnvelopeBytes;
  if (chunk.IsString()) {
    bytes += json_string_size(std::string_view(chunk.GetString(), chunk.GetStringLength()));
  } else {
    bytes += json::to_string(chunk).size();
    if (bytes > config_.max_post_bytes) {
      // Refused here, on the handler's thread, so the handler sees why (as it always did).
      try {
        (void)chunk_bodies(chunk, config_.max_post_bytes);
      } catch (const ChunkTooLarge& e) {
        fail(e.what());
        throw;
      }
    }
  }
  std::unique_lock lock(mutex_);
  // Backpressure by bytes; one chunk larger than the whole buffer still gets in alone.
  changed_.wait(lock, stop_, [&] {
    return undelivered_bytes_ == 0 || undelivered_bytes_ + bytes <= config_.buffer_bytes ||
           !failure_.empty();
  });
  if (stop_.stop_requested()) return;
  if (!failure_.empty()) throw std::runtime_error(failure_);
  pending_.PushBack(json::clone(chunk, pending_.GetAllocator()), pending_.GetAllocator());
  pending_bytes_ += bytes;
  undelivered_bytes_ += bytes;
  ++stats_.chunks;
  if (config_.aggregate)
    aggregate_.PushBack(json::clone(chunk, aggregate_.GetAllocator()), aggregate_.GetAllocator());
  if (!sender_.joinable()) {
    sender_ = std::jthread([this] {
      name_this_thread("pw-stream-send");
      send_loop();
    });
  }
  changed_.notify_all();
}

void StreamSender::finish() {
  {
    std::lock_guard lock(mutex_);
    finishing_ = true;
  }
  changed_.notify_all();
  if (sender_.joinable()) sender_.join();
}

std::optional<std::string> StreamSender::failure() const {
  std::lock_guard lock(mutex_);
  if (failure_.empty()) return std::nullopt;
  return failure_;
}

StreamStats StreamSender::stats() const {
  std::lock_guard lock(mutex_);
  return stats_;
}

void StreamSender::fail(const std::string& why) {
  {
    std::lock_guard lock(mutex_);
    if (failure_.empty()) failure_ = why;
  }
  changed_.notify_all();
}

void StreamSender::send_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    changed_.wait(lock, stop_,
                  [&] { return !pending_.Empty() || finishing_ || !failure_.empty(); });
    if (stop_.stop_requested() || !failure_.empty() || pending_.Empty()) return;
    // Everything yielded since the last post leaves together: this is where chunks merge.
    json::Document batch;
    batch.Swap(pending_);
    pending_.SetArray();
    const std::size_t batch_bytes = std::exchange(pending_bytes_, 0);
    lock.unlock();

    std::string error;
    std::size_t delivered = 0;
    try {
      std::vector<const json::Value*> chunks;
      chunks.reserve(batch.Size());
      for (const auto& chunk : batch.GetArray()) chunks.push_back(&chunk);
      const std::vector<std::string> bodies = merged_bodies(chunks, rule_, config_.max_post_bytes);
      WorkerMetrics& metrics = worker_metrics();
      for (const auto& body : bodies) {
        if (stop_.stop_requested()) break;
        if (const std::string why = sink_.post_stream(body); !why.empty()) {
          error = "stream chunk could not be delivered: " + why;
          break;
        }
        ++delivered;
        metrics.stream_bytes.inc(body.size());
        metrics.chunks_per_post.observe(static_cast<double>(chunks.size()) / static_cast<double>(bodies.size()));
      }
    } catch (const std::exception& e) {
      error = std::string("stream chunks could not be merged: ") + e.what();
    }

    lock.lock();
    stats_.posts += delivered;
    undelivered_bytes_ -= batch_bytes;
    if (!error.empty() && failure_.empty()) {
      failure_ = error;
      log::error(failure_, job_id_);
    }
    changed_.notify_all();
  }
}

}  // namespace podworker::worker

// Where a job's intermediate posts go: HTTP for a real worker, the log for a local test run.
#pragma once

#include <string>

namespace podworker::worker {

// post_stream() calls for one job never overlap, nor do post_progress() calls; a stream post and
// a progress post may be in flight at once (each has its own sender thread, so a slow progress
// post never holds up the stream).
class JobSink {
 public:
  virtual ~JobSink() = default;
  // Posts one stream body; returns an empty string on success (or when interrupted by the job's
  // stop), else why it could not be delivered.
  virtual std::string post_stream(const std::string& body) = 0;
  // Posts one progress body; best effort (a lost progress update loses nothing).
  virtual void post_progress(const std::string& body) = 0;
};

}  // namespace podworker::worker

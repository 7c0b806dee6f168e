// `worker --metrics-port`: GET /metrics (the process registry, Prometheus text format) on a port
// of its own, for a worker that does not serve the job API. One I/O thread; a request is answered
// from memory, so it never waits on the job loop.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace podworker::worker {

class MetricsListener {
 public:
  // Binds and starts serving; throws std::runtime_error when the address cannot be bound.
  MetricsListener(const std::string& host, int port);
  ~MetricsListener();  // stops the thread
  MetricsListener(const MetricsListener&) = delete;
  MetricsListener& operator=(const MetricsListener&) = delete;

  std::string url() const;  // "http://host:port"

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podworker::worker

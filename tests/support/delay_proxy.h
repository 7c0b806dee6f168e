// A loopback TCP proxy that delays every transfer: bytes read from one side are written to the
// other `one_way_delay` later (each direction, so the round trip grows by twice that), in order,
// while more bytes keep flowing in behind them, as on a long network path. It is real TCP: the
// client's keep-alive connection is a connection through the proxy. Used by the stream tests and
// bench_stream to play a remote endpoint.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

namespace podworker::test {

class DelayProxy {
 public:
  // Listens on 127.0.0.1:0 and forwards each connection to 127.0.0.1:upstream_port.
  DelayProxy(std::uint16_t upstream_port, std::chrono::microseconds one_way_delay);
  ~DelayProxy();  // closes every connection and joins its thread
  DelayProxy(const DelayProxy&) = delete;
  DelayProxy& operator=(const DelayProxy&) = delete;

  std::uint16_t port() const;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }
  // Changes the delay for bytes read from now on (open connections included).
  void set_one_way_delay(std::chrono::microseconds one_way_delay);
  // Connections accepted so far.
  std::size_t connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podworker::test

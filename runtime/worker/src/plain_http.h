// The worker's transport for plain http:// URLs (a local endpoint, serve-api, a sidecar): one
// keep-alive HTTP/1.1 connection on a non-blocking socket, the response read by Beast's parser.
// A short job's result post through libcurl cost more than the rest of the worker's share of the
// job (its per-transfer setup, connection checks and multi-handle polls: about four poll() calls
// per request); this costs one send and, mostly, one poll and one recv. https:// URLs, and any URL
// while a proxy is configured, stay on libcurl (http_client.h decides).
#pragma once

#include <atomic>
#include <chrono>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>

#include "podworker/wake_fd.h"

namespace podworker::worker {

struct HttpResponse;

// The parts of an http:// URL a request needs; nullopt for anything else (https, credentials in
// the URL, characters a request line cannot carry), which then goes to libcurl.
struct PlainUrl {
  std::string host;       // for getaddrinfo (an IPv6 literal without its brackets)
  std::string port;       // "80" when the URL names none
  std::string authority;  // the Host header: host[:port] as the URL wrote it
  std::string target;     // path and query, "/" at least
};
std::optional<PlainUrl> parse_plain_url(std::string_view url);

class PlainHttp {
 public:
  explicit PlainHttp(std::chrono::milliseconds connect_timeout);
  ~PlainHttp();
  PlainHttp(const PlainHttp&) = delete;
  PlainHttp& operator=(const PlainHttp&) = delete;

  // `headers`: whole header lines ("Name: value\r\n") besides Host, User-Agent, Accept and
  // Content-Length. A POST when `body` is set, else a GET. Fills status, body and content type,
  // or error (status 0) with timed_out / interrupted as HttpClient documents them.
  void perform(const PlainUrl& url, std::string_view headers, const std::string_view* body,
               std::chrono::milliseconds timeout, std::stop_token stop, HttpResponse& response);

 private:
  using Clock = std::chrono::steady_clock;
  enum class Wait { ready, timed_out, interrupted };
  // Waits until the socket is ready for `events`, the deadline passes or a stop is requested.
  Wait wait(short events, Clock::time_point deadline);
  // Connects to url's host (every address getaddrinfo gives, in order); "" or the error.
  std::string connect(const PlainUrl& url, Clock::time_point deadline, Wait& outcome);
  // Sends head then body; "" or the error.
  std::string send_all(std::string_view head, std::string_view body, Clock::time_point deadline,
                       Wait& outcome);
  void close();

  const std::chrono::milliseconds connect_timeout_;
  int fd_ = -1;
  std::string peer_;  // host:port of the open connection
  WakeFd wake_;       // signalled by a stop request
  std::atomic<bool> interrupted_{false};
};

}  // namespace podworker::worker

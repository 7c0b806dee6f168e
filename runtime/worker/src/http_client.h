// A blocking HTTP/1.1 client for the worker's calls to the job API, one per thread.
//
// Plain http:// URLs go over the client's own keep-alive connection (plain_http.h) unless a proxy
// is configured; https:// (RunPod's API) and everything else go through libcurl:
// Each client owns one curl easy handle driven through its own multi handle: the multi handle's
// connection cache keeps the connection to the endpoint alive between requests (keep-alive), and
// curl_multi_wakeup() lets another thread, or a stop_token, interrupt a long poll at once.
#pragma once

#include <curl/curl.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>

namespace podworker::worker {

class PlainHttp;

// Move-only owners of libcurl handles.
class CurlEasy {
 public:
  CurlEasy();
  ~CurlEasy();
  CurlEasy(CurlEasy&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  CurlEasy& operator=(CurlEasy&& other) noexcept;
  CurlEasy(const CurlEasy&) = delete;
  CurlEasy& operator=(const CurlEasy&) = delete;
  CURL* get() const { return handle_; }

 private:
  CURL* handle_;
};

class CurlMulti {
 public:
  CurlMulti();
  ~CurlMulti();
  CurlMulti(CurlMulti&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  CurlMulti& operator=(CurlMulti&& other) noexcept;
  CurlMulti(const CurlMulti&) = delete;
  CurlMulti& operator=(const CurlMulti&) = delete;
  CURLM* get() const { return handle_; }

 private:
  CURLM* handle_;
};

class CurlHeaders {
 public:
  CurlHeaders() = default;
  ~CurlHeaders();
  CurlHeaders(const CurlHeaders&) = delete;
  CurlHeaders& operator=(const CurlHeaders&) = delete;
  void append(const std::string& line);
  curl_slist* get() const { return list_; }

 private:
  curl_slist* list_ = nullptr;
};

struct HttpResponse {
  long status = 0;          // 0: no HTTP response (see error)
  std::string body;
  std::string content_type;
  std::string error;        // transport error text when status == 0
  bool interrupted = false; // stopped through the stop_token
  bool timed_out = false;   // no answer within the request's timeout (a long poll ran out)

  // Worth another attempt: no response at all, a 5xx, or 429.
  bool retryable() const { return status == 0 || status >= 500 || status == 429; }
};

class HttpClient {
 public:
  // `authorization`: the raw Authorization header value, omitted when empty.
  HttpClient(std::string authorization, std::chrono::milliseconds connect_timeout);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  HttpResponse get(const std::string& url, std::chrono::milliseconds timeout,
                   std::stop_token stop = {});
  // `request_id` becomes the X-Request-ID header (the job id), as the SDK sends it.
  HttpResponse post(const std::string& url, std::string_view body, std::string_view request_id,
                    std::chrono::milliseconds timeout, std::stop_token stop = {});

 private:
  HttpResponse perform(const std::string& url, const std::string_view* body,
                       std::string_view request_id, std::chrono::milliseconds timeout,
                       std::stop_token stop);

  std::string authorization_header_;  // "Authorization: ...", empty when there is none
  const std::chrono::milliseconds connect_timeout_;
  const bool plain_allowed_;  // no proxy configured: http:// URLs may skip libcurl
  std::unique_ptr<PlainHttp> plain_;  // made on the first plain request
  CurlMulti multi_;
  CurlEasy easy_;
  std::atomic<bool> interrupted_{false};
};

// URL-escapes one query-parameter value.
std::string url_escape(std::string_view text);

}  // namespace podworker::worker

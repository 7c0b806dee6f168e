#include "http_client.h"

#include <cstdlib>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>

#include "plain_http.h"

namespace podworker::worker {
namespace {

void global_init() {
  // curl_global_init is not thread-safe; every handle constructor funnels through here first.
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw std::runtime_error("curl_global_init failed");
    }
  });
}

size_t write_body(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// libcurl sends http:// requests through a proxy named by these (it reads http_proxy in lower
// case only); with one set, every request keeps going through libcurl.
bool proxy_configured() {
  for (const char* name : {"http_proxy", "all_proxy", "ALL_PROXY"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return true;
  }
  return false;
}

// A header value without the line breaks that would end it early.
bool header_safe(std::string_view value) {
  return value.find_first_of("\r\n") == std::string_view::npos;
}

// Discards response headers: we read status and content type through curl_easy_getinfo.
size_t ignore_header(char*, size_t size, size_t count, void*) { return size * count; }

}  // namespace

CurlEasy::CurlEasy() {
  global_init();
  handle_ = curl_easy_init();
  if (handle_ == nullptr) throw std::bad_alloc();
}
CurlEasy::~CurlEasy() {
  if (handle_ != nullptr) curl_easy_cleanup(handle_);
}
CurlEasy& CurlEasy::operator=(CurlEasy&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) curl_easy_cleanup(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

CurlMulti::CurlMulti() {
  global_init();
  handle_ = curl_multi_init();
  if (handle_ == nullptr) throw std::bad_alloc();
}
CurlMulti::~CurlMulti() {
  if (handle_ != nullptr) curl_multi_cleanup(handle_);
}
CurlMulti& CurlMulti::operator=(CurlMulti&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) curl_multi_cleanup(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
  }
  return *this;
}

CurlHeaders::~CurlHeaders() {
  if (list_ != nullptr) curl_slist_free_all(list_);
}
void CurlHeaders::append(const std::string& line) {
  curl_slist* next = curl_slist_append(list_, line.c_str());
  if (next == nullptr) throw std::bad_alloc();
  list_ = next;
}

std::string url_escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' || c == '~';
    if (unreserved) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

HttpClient::HttpClient(std::string authorization, std::chrono::milliseconds connect_timeout)
    : authorization_header_(authorization.empty() ? std::string() : "Authorization: " + authorization),
      connect_timeout_(connect_timeout),
      plain_allowed_(!proxy_configured() && header_safe(authorization_header_)) {
  // The options every request shares, set once: the handle is reused for all of this client's
  // requests (keeping its connection), and each request sets only what differs (URL, headers,
  // timeout, method and body). Resetting and setting every option per request was a measurable
  // part of a short job's CPU at high job rates.
  CURL* easy = easy_.get();
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "podworker/0.1");
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(connect_timeout.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, write_body);
  curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, ignore_header);
}

HttpClient::~HttpClient() = default;

HttpResponse HttpClient::get(const std::string& url, std::chrono::milliseconds timeout,
                             std::stop_token stop) {
  return perform(url, nullptr, {}, timeout, std::move(stop));
}

HttpResponse HttpClient::post(const std::string& url, std::string_view body,
                              std::string_view request_id, std::chrono::milliseconds timeout,
                              std::stop_token stop) {
  return perform(url, &body, request_id, timeout, std::move(stop));
}

HttpResponse HttpClient::perform(const std::string& url, const std::string_view* body,
                                 std::string_view request_id, std::chrono::milliseconds timeout,
                                 std::stop_token stop) {
  HttpResponse response;
  if (plain_allowed_) {
    if (const auto plain_url = parse_plain_url(url)) {
      std::string headers;
      if (!authorization_header_.empty()) headers += authorization_header_ + "\r\n";
      if (body != nullptr) {
        headers += "Content-Type: application/json\r\n";
        if (!request_id.empty() && header_safe(request_id)) {
          headers += "X-Request-ID: ";
          headers += request_id;
          headers += "\r\n";
        }
      }
      if (!plain_) plain_ = std::make_unique<PlainHttp>(connect_timeout_);
      plain_->perform(*plain_url, headers, body, timeout, std::move(stop), response);
      return response;
    }
  }
  CURL* easy = easy_.get();

  CurlHeaders headers;
  if (!authorization_header_.empty()) headers.append(authorization_header_);
  if (body != nullptr) {
    headers.append("Content-Type: application/json");
    if (!request_id.empty()) headers.append("X-Request-ID: " + std::string(request_id));
  }
  // curl would otherwise send "Expect: 100-continue" for bodies over 1 KB and wait a round trip.
  headers.append("Expect:");

  curl_easy_setopt(easy, CURLOPT_URL, url.c_str());
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(timeout.count()));
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, &response.body);
  if (body != nullptr) {
    curl_easy_setopt(easy, CURLOPT_POST, 1L);
    curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  } else {
    curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
  }

  interrupted_.store(false);
  CURLM* multi = multi_.get();
  // The callback runs on the thread requesting stop; wakeup is the one multi call that is safe
  // from another thread.
  std::stop_callback on_stop(stop, [this, multi] {
    interrupted_.store(true);
    curl_multi_wakeup(multi);
  });

  if (curl_multi_add_handle(multi, easy) != CURLM_OK) {
    response.error = "curl_multi_add_handle failed";
    return response;
  }
  CURLcode result = CURLE_OK;
  bool done = false;
  while (!done) {
    if (interrupted_.load()) {
      response.interrupted = true;
      response.error = "interrupted";
      break;
    }
    int running = 0;
    if (curl_multi_perform(multi, &running) != CURLM_OK) {
      response.error = "curl_multi_perform failed";
      break;
    }
    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy) {
        result = msg->data.result;
        done = true;
      }
    }
    if (done || running == 0) break;
    // Sleeps until socket activity, a wakeup, or curl's own timer; the 1 s cap is only a safety
    // net in case a wakeup raced with the interrupted_ check above.
    curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
  }
  curl_multi_remove_handle(multi, easy);
  // `headers` ends with this call; the handle keeps its other per-request pointers (body, output)
  // until the next request sets them, and never reads them in between.
  curl_easy_setopt(easy, CURLOPT_HTTPHEADER, nullptr);

  if (response.interrupted || !response.error.empty()) {
    response.status = 0;
    return response;
  }
  if (!done) {
    response.error = "request ended without a result";
    return response;
  }
  if (result != CURLE_OK) {
    response.timed_out = result == CURLE_OPERATION_TIMEDOUT;
    response.error = curl_easy_strerror(result);
    return response;
  }
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
  char* type = nullptr;
  if (curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &type) == CURLE_OK && type != nullptr) {
    response.content_type = type;
  }
  return response;
}

}  // namespace podworker::worker

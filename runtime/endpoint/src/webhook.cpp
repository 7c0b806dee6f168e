#include "webhook.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>
#include <stdexcept>

#include "podworker/log.h"
#include "podworker/thread_name.h"

namespace podworker::endpoint {

namespace {

// Deliveries waiting beyond this are dropped (and logged): a receiver that is down must not let the
// backlog grow without bound.
constexpr std::size_t kMaxQueued = 10'000;

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

std::size_t discard_body(char*, std::size_t size, std::size_t n, void*) { return size * n; }

int abort_on_stop(void* stop, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::stop_token*>(stop)->stop_requested() ? 1 : 0;
}

}  // namespace

bool webhook_url_supported(std::string_view url) {
  for (std::string_view scheme : {"http://", "https://"}) {
    if (!url.starts_with(scheme)) continue;
    const std::string_view rest = url.substr(scheme.size());
    const auto end = rest.find_first_of("/?#");
    const std::string_view authority = rest.substr(0, end);
    // No user info: credentials in a webhook URL would be sent to whoever it names.
    return !authority.empty() && authority.front() != ':' && authority.find('@') == std::string_view::npos;
  }
  return false;
}

HttpResult post_json(const std::string& url, const std::string& body, const WebhookPolicy& policy,
                     std::stop_token stop) {
  HttpResult result;
  std::unique_ptr<CURL, EasyDeleter> easy(curl_easy_init());
  if (!easy) {
    result.error = "cannot create a libcurl handle";
    return result;
  }
  std::unique_ptr<curl_slist, SlistDeleter> headers(curl_slist_append(nullptr, "Content-Type: application/json"));
  CURL* h = easy.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_POST, 1L);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
  curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_USERAGENT, "podworker-endpoint");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(policy.timeout.count()));
  // Redirects are not followed: the status JSON goes to the URL the client gave, nowhere else.
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!policy.ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, policy.ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard_body);
  curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, abort_on_stop);
  curl_easy_setopt(h, CURLOPT_XFERINFODATA, &stop);
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, error);
  const CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    result.error = error[0] != '\0' ? std::string(error) : std::string(curl_easy_strerror(rc));
    return result;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.status);
  return result;
}

WebhookSender::WebhookSender(WebhookPolicy policy, unsigned threads) : policy_(std::move(policy)) {
  // Once per process, before any handle (the worker's HTTP client does the same; calls nest).
  static const bool curl_ready = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
  if (!curl_ready) throw std::runtime_error("curl_global_init failed");
  for (unsigned i = 0; i < std::max(1u, threads); ++i) {
    threads_.emplace_back([this](std::stop_token stop) {
      name_this_thread("pw-webhook");
      run(stop);
    });
  }
}

WebhookSender::~WebhookSender() { stop(); }

void WebhookSender::stop() {
  for (auto& t : threads_) t.request_stop();
  threads_.clear();  // joins
  std::lock_guard lock(mu_);
  if (!queue_.empty())
    log::warn("endpoint: " + std::to_string(queue_.size()) + " webhook(s) not delivered at shutdown");
  queue_.clear();
}

void WebhookSender::send(TerminalEvent event) {
  if (!webhook_url_supported(event.webhook)) {
    log::warn("webhook " + event.webhook + " not delivered: only http:// and https:// URLs are supported",
              event.job.id);
    return;
  }
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      log::error("webhook to " + event.webhook + " dropped: " + std::to_string(kMaxQueued) + " deliveries waiting",
                 event.job.id);
      return;
    }
    queue_.push_back(std::move(event));
  }
  cv_.notify_one();
}

void WebhookSender::run(std::stop_token stop) {
  for (;;) {
    TerminalEvent event;
    {
      std::unique_lock lock(mu_);
      if (!cv_.wait(lock, stop, [this] { return !queue_.empty(); })) return;
      event = std::move(queue_.front());
      queue_.pop_front();
    }
    deliver(event, stop);
  }
}

void WebhookSender::deliver(const TerminalEvent& event, std::stop_token stop) {
  const std::string body = render_status(event.job);
  for (int attempt = 0; attempt <= policy_.retries; ++attempt) {
    if (attempt > 0) {
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, stop, policy_.delay, [] { return false; });
    }
    if (stop.stop_requested()) return;
    const HttpResult r = post_json(event.webhook, body, policy_, stop);
    if (r.status >= 200 && r.status < 300) {
      log::debug("webhook delivered to " + event.webhook, event.job.id);
      return;
    }
    if (stop.stop_requested()) return;
    const std::string why = r.status != 0 ? "HTTP " + std::to_string(r.status) : r.error;
    log::warn("webhook attempt " + std::to_string(attempt + 1) + " to " + event.webhook + " failed: " + why,
              event.job.id);
  }
  log::error(
      "webhook to " + event.webhook + " not delivered after " + std::to_string(policy_.retries + 1) + " attempts",
      event.job.id);
}

}  // namespace podworker::endpoint

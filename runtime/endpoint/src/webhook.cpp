#include "webhook.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "podworker/log.h"

namespace podworker::endpoint {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

std::optional<HttpUrl> parse_http_url(std::string_view url) {
  constexpr std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme) return std::nullopt;
  url.remove_prefix(scheme.size());
  const auto slash = url.find_first_of("/?");
  std::string_view authority = url.substr(0, slash);
  HttpUrl out;
  out.target = slash == std::string_view::npos ? "/" : std::string(url.substr(slash));
  if (!out.target.empty() && out.target.front() == '?') out.target.insert(0, "/");
  if (authority.find('@') != std::string_view::npos) return std::nullopt;
  if (!authority.empty() && authority.front() == '[') {  // [v6]:port
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty() && authority.front() == ':') out.port = std::string(authority.substr(1));
  } else {
    const auto colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) out.port = std::string(authority.substr(colon + 1));
  }
  if (out.port.empty()) out.port = "80";
  if (out.host.empty()) return std::nullopt;
  return out;
}

asio::awaitable<HttpResult> http_post_json(const HttpUrl& url, const std::string& body,
                                           std::chrono::milliseconds timeout) {
  auto ex = co_await asio::this_coro::executor;
  beast::error_code ec;
  HttpResult result;
  asio::ip::tcp::resolver resolver(ex);
  auto endpoints = co_await resolver.async_resolve(url.host, url.port, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result.error = "cannot resolve " + url.host + ": " + ec.message();
    co_return result;
  }
  beast::tcp_stream stream(ex);
  stream.expires_after(timeout);
  co_await stream.async_connect(endpoints, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result.error = "cannot connect to " + url.host + ":" + url.port + ": " + ec.message();
    co_return result;
  }
  http::request<http::string_body> req{http::verb::post, url.target, 11};
  req.set(http::field::host, url.host);
  req.set(http::field::user_agent, "podworker-endpoint");
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.prepare_payload();
  co_await http::async_write(stream, req, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result.error = "cannot send: " + ec.message();
    co_return result;
  }
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(1u << 20);
  co_await http::async_read(stream, buffer, parser, asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    result.error = "no response: " + ec.message();
    co_return result;
  }
  result.status = parser.get().result_int();
  beast::error_code ignored;
  stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  co_return result;
}

asio::awaitable<void> deliver_webhook(TerminalEvent event, WebhookPolicy policy, const std::atomic<bool>& stopping) {
  const auto url = parse_http_url(event.webhook);
  if (!url) {
    log::warn("webhook " + event.webhook + " not delivered: only http:// URLs are supported", event.job_id);
    co_return;
  }
  auto ex = co_await asio::this_coro::executor;
  for (int attempt = 0; attempt <= policy.retries; ++attempt) {
    if (attempt > 0) {
      asio::steady_timer timer(ex, policy.delay);
      beast::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (stopping.load()) co_return;
    const HttpResult r = co_await http_post_json(*url, event.status_json, policy.timeout);
    if (r.status >= 200 && r.status < 300) {
      log::debug("webhook delivered to " + event.webhook, event.job_id);
      co_return;
    }
    const std::string why = r.status != 0 ? "HTTP " + std::to_string(r.status) : r.error;
    log::warn("webhook attempt " + std::to_string(attempt + 1) + " to " + event.webhook + " failed: " + why,
              event.job_id);
  }
  log::error("webhook to " + event.webhook + " not delivered after " + std::to_string(policy.retries + 1) +
                 " attempts",
             event.job_id);
}

}  // namespace podworker::endpoint

#include "http_client.h"

#include <chrono>
#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace podworker::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

void set_socket_timeouts(tcp::socket& s, int seconds) {
  timeval tv{seconds, 0};
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(s.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

tcp::socket connect_loopback(asio::io_context& ioc, std::uint16_t port) {
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  s.set_option(tcp::no_delay(true));
  set_socket_timeouts(s, 30);
  return s;
}

std::string to_string(beast::string_view s) { return std::string(s.data(), s.size()); }

}  // namespace

struct HttpClient::Impl {
  std::uint16_t port;
  asio::io_context ioc;
  std::unique_ptr<tcp::socket> socket;
  beast::flat_buffer buffer;

  Response send_once(const std::string& method, const std::string& target, const std::string& body,
                     const Headers& headers) {
    if (!socket) {
      socket = std::make_unique<tcp::socket>(connect_loopback(ioc, port));
      buffer.clear();
    }
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    if (req.method() == http::verb::unknown) req.method_string(method);
    req.set(http::field::host, "127.0.0.1");
    for (const auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(true);
    http::write(*socket, req);
    http::response_parser<http::string_body> parser;
    parser.body_limit(256u << 20);
    http::read(*socket, buffer, parser);
    auto& res = parser.get();
    Response out;
    out.status = res.result_int();
    out.body = std::move(res.body());
    out.content_type = to_string(res[http::field::content_type]);
    out.allow = to_string(res[http::field::allow]);
    if (!res.keep_alive()) socket.reset();
    return out;
  }
};

HttpClient::HttpClient(std::uint16_t port) : impl_(std::make_unique<Impl>()) { impl_->port = port; }
HttpClient::~HttpClient() = default;

Response HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                             const Headers& headers) {
  try {
    return impl_->send_once(method, target, body, headers);
  } catch (const boost::system::system_error&) {
    // The server may have closed an idle kept-alive connection: one retry on a fresh one.
    impl_->socket.reset();
    return impl_->send_once(method, target, body, headers);
  }
}

SseReader::SseReader(std::uint16_t port, std::string target)
    : SseReader(port, std::move(target), std::string{}, Headers{}) {}

SseReader::SseReader(std::uint16_t port, std::string target, std::string post_body, Headers headers) {
  std::string req = (post_body.empty() ? "GET " : "POST ") + target +
                    " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!post_body.empty()) req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(post_body.size()) + "\r\n";
  req += "\r\n" + post_body;
  thread_ = std::jthread([this, port, req = std::move(req)] {
    try {
      asio::io_context ioc;
      tcp::socket s = connect_loopback(ioc, port);
      asio::write(s, asio::buffer(req));
      char chunk[4096];
      for (;;) {
        boost::system::error_code ec;
        const std::size_t n = s.read_some(asio::buffer(chunk), ec);
        if (n > 0) {
          std::lock_guard lock(mu_);
          text_.append(chunk, n);
          cv_.notify_all();
        }
        if (ec) break;
      }
    } catch (const std::exception&) {
    }
    std::lock_guard lock(mu_);
    closed_ = true;
    cv_.notify_all();
  });
}

SseReader::~SseReader() = default;

bool SseReader::wait_for(const std::string& needle) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, std::chrono::seconds(10),
                      [&] { return text_.find(needle) != std::string::npos || closed_; }) &&
         text_.find(needle) != std::string::npos;
}

std::string SseReader::finish() {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::seconds(10), [&] { return closed_; });
  return text_;
}

std::string SseReader::text() {
  std::lock_guard lock(mu_);
  return text_;
}

struct WebhookReceiver::Impl {
  asio::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::vector<int> statuses;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> bodies;
  std::jthread thread;
};

WebhookReceiver::WebhookReceiver(std::vector<int> statuses) : impl_(std::make_unique<Impl>()) {
  impl_->statuses = std::move(statuses);
  tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  impl_->acceptor.open(ep.protocol());
  impl_->acceptor.bind(ep);
  impl_->acceptor.listen();
  port_ = impl_->acceptor.local_endpoint().port();
  impl_->thread = std::jthread([impl = impl_.get()](std::stop_token stop) {
    while (!stop.stop_requested()) {
      boost::system::error_code ec;
      tcp::socket s(impl->ioc);
      impl->acceptor.accept(s, ec);
      if (ec || stop.stop_requested()) break;
      try {
        set_socket_timeouts(s, 10);
        beast::flat_buffer buffer;
        http::request<http::string_body> req;
        http::read(s, buffer, req);
        int status = 200;
        {
          std::lock_guard lock(impl->mu);
          const std::size_t i = impl->bodies.size();
          if (i < impl->statuses.size()) status = impl->statuses[i];
          impl->bodies.push_back(req.body());
          impl->cv.notify_all();
        }
        http::response<http::string_body> res{static_cast<http::status>(status), 11};
        res.body() = "{}";
        res.keep_alive(false);
        res.prepare_payload();
        http::write(s, res);
      } catch (const std::exception&) {
      }
    }
  });
}

WebhookReceiver::~WebhookReceiver() {
  impl_->thread.request_stop();
  // Wake the blocking accept() with a connection of our own.
  try {
    asio::io_context ioc;
    tcp::socket s = connect_loopback(ioc, port_);
  } catch (const std::exception&) {
  }
  impl_->thread.join();
}

std::vector<std::string> WebhookReceiver::wait_for_requests(std::size_t n) {
  std::unique_lock lock(impl_->mu);
  impl_->cv.wait_for(lock, std::chrono::seconds(10), [&] { return impl_->bodies.size() >= n; });
  return impl_->bodies;
}

bool eventually(const std::function<bool()>& condition, int timeout_ms) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    if (condition()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace podworker::test

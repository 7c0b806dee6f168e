#include "recording_server.h"

#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <list>

namespace podworker::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

struct RecordingServer::Impl {
  explicit Impl(Responder r) : responder(std::move(r)), acceptor(io) {}

  Responder responder;
  asio::io_context io;  // never run: sockets are used synchronously
  tcp::acceptor acceptor;
  std::stop_source stop;

  mutable std::mutex mu;
  mutable std::condition_variable changed;
  std::vector<RecordedRequest> recorded;
  std::list<std::shared_ptr<tcp::socket>> sockets;
  std::vector<std::jthread> threads;
  std::jthread accept_thread;
  bool stopped = false;

  void serve(std::shared_ptr<tcp::socket> socket) {
    beast::flat_buffer buffer;
    for (;;) {
      http::request_parser<http::string_body> parser;
      parser.body_limit(256u << 20);
      beast::error_code ec;
      http::read(*socket, buffer, parser, ec);
      if (ec) return;
      const auto& req = parser.get();
      RecordedRequest rec;
      rec.method = std::string(req.method_string());
      rec.target = std::string(req.target());
      for (const auto& field : req) {
        std::string name(field.name_string());
        std::transform(name.begin(), name.end(), name.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        rec.headers[name] = std::string(field.value());
      }
      rec.body = req.body();
      {
        std::lock_guard lock(mu);
        recorded.push_back(rec);
      }
      changed.notify_all();
      const Reply reply = responder(rec, stop.get_token());
      http::response<http::string_body> res{static_cast<http::status>(reply.status), req.version()};
      res.keep_alive(req.keep_alive());
      if (!reply.body.empty()) res.set(http::field::content_type, reply.content_type);
      res.body() = reply.body;
      res.prepare_payload();
      http::write(*socket, res, ec);
      if (ec || !req.keep_alive()) return;
    }
  }
};

RecordingServer::RecordingServer(Responder responder)
    : impl_(std::make_unique<Impl>(std::move(responder))) {
  auto& a = impl_->acceptor;
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), 0);
  a.open(ep.protocol());
  a.set_option(asio::socket_base::reuse_address(true));
  a.bind(ep);
  a.listen();
  port_ = a.local_endpoint().port();
  impl_->accept_thread = std::jthread([impl = impl_.get()] {
    for (;;) {
      auto socket = std::make_shared<tcp::socket>(impl->io);
      beast::error_code ec;
      impl->acceptor.accept(*socket, ec);
      std::lock_guard lock(impl->mu);
      if (ec || impl->stopped) return;
      impl->sockets.push_back(socket);
      impl->threads.emplace_back([impl, socket] { impl->serve(socket); });
    }
  });
}

RecordingServer::~RecordingServer() { stop(); }

void RecordingServer::stop() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
    // shutdown() on the raw descriptors wakes the threads blocked in accept() and read().
    ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
    for (auto& s : impl_->sockets) ::shutdown(s->native_handle(), SHUT_RDWR);
  }
  impl_->stop.request_stop();
  impl_->accept_thread.join();
  std::vector<std::jthread> threads;
  {
    std::lock_guard lock(impl_->mu);
    threads.swap(impl_->threads);
  }
  threads.clear();  // joins
}

std::size_t RecordingServer::connections() const {
  std::lock_guard lock(impl_->mu);
  return impl_->sockets.size();
}

std::vector<RecordedRequest> RecordingServer::requests() const {
  std::lock_guard lock(impl_->mu);
  return impl_->recorded;
}

bool RecordingServer::wait_until(
    const std::function<bool(const std::vector<RecordedRequest>&)>& done,
    std::chrono::milliseconds timeout) const {
  std::unique_lock lock(impl_->mu);
  return impl_->changed.wait_for(lock, timeout, [&] { return done(impl_->recorded); });
}

}  // namespace podworker::test

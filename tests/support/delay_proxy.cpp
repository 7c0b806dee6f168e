#include "delay_proxy.h"

#include <utility>  // before Boost.Asio: its awaitable.hpp uses std::exchange without it

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <deque>
#include <thread>
#include <vector>

namespace podworker::test {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

// One direction of one connection: what was read, each piece stamped with when it may leave.
struct Lane {
  explicit Lane(asio::any_io_executor ex) : wake(ex, Clock::time_point::max()), due(ex) {}
  std::deque<std::pair<Clock::time_point, std::vector<char>>> queue;
  asio::steady_timer wake;  // cancelled to tell the writer that the queue changed
  asio::steady_timer due;
  bool ended = false;
};

struct Connection {
  Connection(tcp::socket client_socket, asio::any_io_executor ex)
      : client(std::move(client_socket)), upstream(ex), up(ex), down(ex) {}
  tcp::socket client;
  tcp::socket upstream;
  Lane up;    // client → upstream
  Lane down;  // upstream → client
  void close() {
    boost::system::error_code ec;
    client.close(ec);
    upstream.close(ec);
  }
};

asio::awaitable<void> read_lane(std::shared_ptr<Connection> c, tcp::socket& from, Lane& lane,
                                const std::atomic<std::chrono::microseconds>& delay) {
  (void)c;  // held: the connection lives while either lane runs
  std::vector<char> buffer(64 * 1024);
  for (;;) {
    boost::system::error_code ec;
    const std::size_t n = co_await from.async_read_some(
        asio::buffer(buffer), asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
    lane.queue.emplace_back(Clock::now() + delay.load(),
                            std::vector<char>(buffer.begin(), buffer.begin() + n));
    lane.wake.cancel();
  }
  lane.ended = true;
  lane.wake.cancel();
}

asio::awaitable<void> write_lane(std::shared_ptr<Connection> c, tcp::socket& to, Lane& lane) {
  for (;;) {
    while (lane.queue.empty() && !lane.ended) {
      boost::system::error_code ec;
      lane.wake.expires_at(Clock::time_point::max());
      co_await lane.wake.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (lane.queue.empty()) break;  // the reading side ended and everything before it went out
    boost::system::error_code ec;
    lane.due.expires_at(lane.queue.front().first);
    co_await lane.due.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    const std::vector<char> data = std::move(lane.queue.front().second);
    lane.queue.pop_front();
    co_await asio::async_write(to, asio::buffer(data),
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) break;
  }
  // Either side closing ends the whole connection, as a real path would.
  c->close();
}

}  // namespace

struct DelayProxy::Impl {
  Impl(std::uint16_t upstream, std::chrono::microseconds d)
      : upstream_port(upstream),
        delay(d),
        acceptor(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {}

  asio::awaitable<void> serve(tcp::socket socket) {
    auto ex = co_await asio::this_coro::executor;
    auto c = std::make_shared<Connection>(std::move(socket), ex);
    boost::system::error_code ec;
    co_await c->upstream.async_connect(
        tcp::endpoint(asio::ip::address_v4::loopback(), upstream_port),
        asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      c->close();
      co_return;
    }
    c->client.set_option(tcp::no_delay(true), ec);
    c->upstream.set_option(tcp::no_delay(true), ec);
    asio::co_spawn(ex, read_lane(c, c->client, c->up, delay), asio::detached);
    asio::co_spawn(ex, write_lane(c, c->upstream, c->up), asio::detached);
    asio::co_spawn(ex, read_lane(c, c->upstream, c->down, delay), asio::detached);
    asio::co_spawn(ex, write_lane(c, c->client, c->down), asio::detached);
  }

  asio::awaitable<void> accept_loop() {
    for (;;) {
      boost::system::error_code ec;
      tcp::socket socket =
          co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
      if (ec) co_return;
      ++accepted;
      asio::co_spawn(io, serve(std::move(socket)), asio::detached);
    }
  }

  std::uint16_t upstream_port;
  std::atomic<std::chrono::microseconds> delay;
  asio::io_context io;
  tcp::acceptor acceptor;
  std::atomic<std::size_t> accepted{0};
  std::jthread thread;  // last: runs io, stops before the members it uses go
};

DelayProxy::DelayProxy(std::uint16_t upstream_port, std::chrono::microseconds one_way_delay)
    : impl_(std::make_unique<Impl>(upstream_port, one_way_delay)) {
  asio::co_spawn(impl_->io, impl_->accept_loop(), asio::detached);
  impl_->thread = std::jthread([this] { impl_->io.run(); });
}

DelayProxy::~DelayProxy() {
  impl_->io.stop();
  impl_->thread.join();
}

std::uint16_t DelayProxy::port() const {
  return impl_->acceptor.local_endpoint().port();
}
void DelayProxy::set_one_way_delay(std::chrono::microseconds one_way_delay) {
  impl_->delay = one_way_delay;
}
std::size_t DelayProxy::connections() const {
  return impl_->accepted.load();
}

}  // namespace podworker::test

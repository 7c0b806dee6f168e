#include "http_load.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <memory>
#include <stdexcept>
#include <thread>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange unincluded

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace podworker::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// One request may wait for a whole job (/runsync); anything slower than this is an error.
constexpr auto kRequestTimeout = std::chrono::seconds(120);
// A connection that keeps failing (server gone) gives up rather than spin until the deadline.
constexpr std::uint64_t kMaxErrorsPerConnection = 100;

struct ConnectionStats {
  std::uint64_t ok = 0;
  std::uint64_t errors = 0;
  std::string first_error;
  std::vector<double> latencies_us;
};

http::request<http::string_body> to_beast(const Target& target, Request request) {
  http::request<http::string_body> req{request.post ? http::verb::post : http::verb::get,
                                       request.path, 11};
  req.set(http::field::host, target.host);
  req.keep_alive(true);
  if (!target.authorization.empty()) req.set(http::field::authorization, target.authorization);
  if (request.post) {
    req.set(http::field::content_type, "application/json");
    req.body() = std::move(request.body);
  }
  req.prepare_payload();
  return req;
}

void note_error(ConnectionStats& stats, std::string what) {
  if (stats.errors++ == 0) stats.first_error = std::move(what);
}

asio::awaitable<void> connection_loop(const Target& target, tcp::endpoint address,
                                      const RequestMaker& make, const LoadOptions& options,
                                      std::size_t index,
                                      Clock::time_point window_start, Clock::time_point window_end,
                                      ConnectionStats& stats) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  beast::flat_buffer buffer;
  bool connected = false;
  std::uint64_t sequence = 0;
  while (Clock::now() < window_end && stats.errors < kMaxErrorsPerConnection) {
    try {
      if (!connected) {
        stream.expires_after(std::chrono::seconds(10));
        co_await stream.async_connect(address, asio::use_awaitable);
        stream.socket().set_option(tcp::no_delay(true));
        buffer.clear();
        connected = true;
      }
      auto req = to_beast(target, make(index, sequence++));
      stream.expires_after(kRequestTimeout);
      const auto sent = Clock::now();
      co_await http::async_write(stream, req, asio::use_awaitable);
      http::response<http::string_body> res;
      co_await http::async_read(stream, buffer, res, asio::use_awaitable);
      const auto received = Clock::now();
      if (res.result_int() / 100 != 2) {
        note_error(stats, "HTTP " + std::to_string(res.result_int()) + " " +
                              res.body().substr(0, 200));
      } else if (options.accept && !options.accept(res.body())) {
        note_error(stats, "rejected response: " + res.body().substr(0, 200));
      } else if (received >= window_start && received <= window_end) {
        ++stats.ok;
        stats.latencies_us.push_back(
            std::chrono::duration<double, std::micro>(received - sent).count());
      }
      if (!res.keep_alive()) {
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        stream.close();
        connected = false;
      }
    } catch (const std::exception& e) {
      note_error(stats, e.what());
      stream.close();
      connected = false;
    }
  }
  if (connected) {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }
}

tcp::endpoint resolve(const Target& target) {
  asio::io_context ioc;
  tcp::resolver resolver(ioc);
  auto results = resolver.resolve(target.host, std::to_string(target.port));
  if (results.empty()) throw std::runtime_error("cannot resolve " + target.host);
  return results.begin()->endpoint();
}

}  // namespace

bool parse_origin(const std::string& origin, Target& target) {
  constexpr std::string_view scheme = "http://";
  if (origin.rfind(scheme, 0) != 0) return false;
  auto rest = origin.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos) rest.resize(slash);
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return false;
  try {
    const int port = std::stoi(rest.substr(colon + 1));
    if (port <= 0 || port > 65535) return false;
    target.host = rest.substr(0, colon);
    target.port = static_cast<std::uint16_t>(port);
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

double LoadResult::percentile_ms(double p) const {
  if (latencies_us.empty()) return 0;
  const auto rank = static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(latencies_us.size())));
  return latencies_us[std::clamp<std::size_t>(rank, 1, latencies_us.size()) - 1] / 1000.0;
}

LoadResult run_load(const Target& target, const LoadOptions& options, const RequestMaker& make) {
  const auto address = resolve(target);
  asio::io_context ioc(static_cast<int>(std::max(1u, options.threads)));
  std::vector<ConnectionStats> stats(options.connections);
  const auto window_start = Clock::now() + options.warmup;
  const auto window_end = window_start + options.measure;
  for (std::size_t i = 0; i < options.connections; ++i) {
    asio::co_spawn(ioc, connection_loop(target, address, make, options, i, window_start, window_end, stats[i]),
                   asio::detached);
  }
  {
    std::vector<std::jthread> threads;
    for (unsigned t = 1; t < std::max(1u, options.threads); ++t) threads.emplace_back([&ioc] { ioc.run(); });
    ioc.run();
  }  // joins the other client threads

  LoadResult result;
  result.seconds = std::chrono::duration<double>(options.measure).count();
  for (auto& s : stats) {
    result.ok += s.ok;
    result.errors += s.errors;
    if (result.first_error.empty()) result.first_error = s.first_error;
    result.latencies_us.insert(result.latencies_us.end(), s.latencies_us.begin(), s.latencies_us.end());
  }
  std::sort(result.latencies_us.begin(), result.latencies_us.end());
  return result;
}

Response request_once(const Target& target, const Request& request, std::chrono::milliseconds timeout) {
  asio::io_context ioc;
  const auto address = resolve(target);
  Response response;
  std::exception_ptr failure;
  bool finished = false;
  asio::co_spawn(
      ioc,
      [&]() -> asio::awaitable<void> {
        beast::tcp_stream stream(co_await asio::this_coro::executor);
        stream.expires_after(timeout);
        co_await stream.async_connect(address, asio::use_awaitable);
        auto req = to_beast(target, request);
        req.keep_alive(false);
        co_await http::async_write(stream, req, asio::use_awaitable);
        beast::flat_buffer buffer;
        http::response<http::string_body> res;
        co_await http::async_read(stream, buffer, res, asio::use_awaitable);
        beast::error_code ignored;
        stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        response = {static_cast<int>(res.result_int()), std::move(res.body())};
      },
      [&](std::exception_ptr error) {
        failure = error;
        finished = true;
      });
  ioc.run();  // the stream's own expiry bounds every step
  if (failure) std::rethrow_exception(failure);
  if (!finished) throw std::runtime_error("request did not finish");
  return response;
}

}  // namespace podworker::bench

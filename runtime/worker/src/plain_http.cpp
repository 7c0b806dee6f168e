#include "plain_http.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <cstring>
#include <limits>
#include <memory>
#include <stop_token>

#include "http_client.h"

namespace podworker::worker {

namespace http = boost::beast::http;

namespace {

bool request_line_safe(std::string_view s) {
  for (const unsigned char c : s) {
    if (c <= 0x20 || c == 0x7f) return false;
  }
  return true;
}

std::string system_error(const char* what) {
  return std::string(what) + ": " + std::strerror(errno);
}

struct AddrInfoFree {
  void operator()(addrinfo* a) const noexcept { ::freeaddrinfo(a); }
};

}  // namespace

std::optional<PlainUrl> parse_plain_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) != kScheme) return std::nullopt;
  std::string_view rest = url.substr(kScheme.size());
  const auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? "/" : rest.substr(slash);
  if (const auto hash = target.find('#'); hash != std::string_view::npos)
    target = target.substr(0, hash);
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  if (!request_line_safe(authority) || !request_line_safe(target)) return std::nullopt;
  PlainUrl u;
  u.authority = std::string(authority);
  u.target =
      target.empty() || target.front() != '/' ? "/" + std::string(target) : std::string(target);
  std::string_view port;
  if (authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return std::nullopt;
      port = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (u.host.empty()) return std::nullopt;
  if (port.empty()) {
    u.port = "80";
  } else {
    if (port.size() > 5 || port.find_first_not_of("0123456789") != std::string_view::npos ||
        std::stoi(std::string(port)) > 65535)
      return std::nullopt;
    u.port = std::string(port);
  }
  return u;
}

PlainHttp::PlainHttp(std::chrono::milliseconds connect_timeout)
    : connect_timeout_(connect_timeout) {}

PlainHttp::~PlainHttp() {
  close();
}

void PlainHttp::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  peer_.clear();
}

PlainHttp::Wait PlainHttp::wait(short events, Clock::time_point deadline) {
  for (;;) {
    if (interrupted_.load()) return Wait::interrupted;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Wait::timed_out;
    pollfd fds[2] = {{fd_, events, 0}, {wake_.fd(), POLLIN, 0}};
    const int n = ::poll(fds, 2, static_cast<int>(std::min<long long>(left.count(), 60'000)));
    if (n < 0 && errno != EINTR) return Wait::ready;  // the socket call that follows reports it
    if ((fds[1].revents & POLLIN) != 0) wake_.drain();
    if (fds[0].revents != 0) return Wait::ready;
  }
}

std::string PlainHttp::connect(const PlainUrl& url, Clock::time_point deadline, Wait& outcome) {
  close();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  addrinfo* found = nullptr;
  if (const int rc = ::getaddrinfo(url.host.c_str(), url.port.c_str(), &hints, &found); rc != 0) {
    return "could not resolve " + url.host + ": " + ::gai_strerror(rc);
  }
  const std::unique_ptr<addrinfo, AddrInfoFree> addresses(found);
  const auto connect_deadline = std::min(deadline, Clock::now() + connect_timeout_);
  std::string error = "no address for " + url.host;
  for (const addrinfo* a = addresses.get(); a != nullptr; a = a->ai_next) {
    fd_ = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd_ < 0) {
      error = system_error("socket");
      continue;
    }
    if (::connect(fd_, a->ai_addr, a->ai_addrlen) != 0 && errno != EINPROGRESS) {
      error = "could not connect to " + url.authority + ": " + std::strerror(errno);
      close();
      continue;
    }
    outcome = wait(POLLOUT, connect_deadline);
    if (outcome != Wait::ready) {
      close();
      if (outcome == Wait::timed_out && Clock::now() < deadline) {
        outcome = Wait::ready;  // the connect timeout, not the request's: an error like any other
        error = "could not connect to " + url.authority + " within " +
                std::to_string(connect_timeout_.count()) + " ms";
        continue;
      }
      return "connect to " + url.authority + " not finished";
    }
    int so_error = 0;
    socklen_t len = sizeof so_error;
    ::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &so_error, &len);
    if (so_error != 0) {
      error = "could not connect to " + url.authority + ": " + std::strerror(so_error);
      close();
      continue;
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    peer_ = url.host + ":" + url.port;
    return {};
  }
  return error;
}

std::string PlainHttp::send_all(std::string_view head, std::string_view body,
                                Clock::time_point deadline, Wait& outcome) {
  std::size_t sent = 0;
  const std::size_t total = head.size() + body.size();
  while (sent < total) {
    iovec parts[2];
    int count = 0;
    if (sent < head.size()) {
      parts[count++] = {const_cast<char*>(head.data() + sent), head.size() - sent};
      if (!body.empty()) parts[count++] = {const_cast<char*>(body.data()), body.size()};
    } else {
      const std::size_t at = sent - head.size();
      parts[count++] = {const_cast<char*>(body.data() + at), body.size() - at};
    }
    msghdr message{};
    message.msg_iov = parts;
    message.msg_iovlen = static_cast<std::size_t>(count);
    const ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      outcome = wait(POLLOUT, deadline);
      if (outcome != Wait::ready) return "request not sent";
      continue;
    }
    return system_error("send");
  }
  return {};
}

void PlainHttp::perform(const PlainUrl& url, std::string_view headers, const std::string_view* body,
                        std::chrono::milliseconds timeout, std::stop_token stop,
                        HttpResponse& response) {
  const auto deadline = Clock::now() + timeout;
  wake_.drain();
  interrupted_.store(false);
  const std::stop_callback on_stop(stop, [this] {
    interrupted_.store(true);
    wake_.signal();
  });

  std::string head;
  head.reserve(160 + url.target.size() + headers.size());
  head += body != nullptr ? "POST " : "GET ";
  head += url.target;
  head += " HTTP/1.1\r\nHost: ";
  head += url.authority;
  head += "\r\nUser-Agent: podworker/0.1\r\nAccept: */*\r\n";
  head += headers;
  if (body != nullptr) {
    head += "Content-Length: ";
    head += std::to_string(body->size());
    head += "\r\n";
  }
  head += "\r\n";
  const std::string_view payload = body != nullptr ? *body : std::string_view{};

  Wait outcome = Wait::ready;
  const auto fail = [&](std::string error) {
    close();
    response.status = 0;
    response.body.clear();
    if (outcome == Wait::interrupted) {
      response.interrupted = true;
      response.error = "interrupted";
    } else if (outcome == Wait::timed_out) {
      response.timed_out = true;
      response.error = "no response within " + std::to_string(timeout.count()) + " ms";
    } else {
      response.error = std::move(error);
    }
  };
  // A kept connection the server has closed meanwhile fails on its first use: the request goes
  // again once on a new connection, as long as no byte of an answer came (as libcurl does).
  for (int attempt = 0;; ++attempt) {
    const bool reused = fd_ >= 0 && peer_ == url.host + ":" + url.port;
    if (!reused) {
      if (std::string e = connect(url, deadline, outcome); !e.empty()) return fail(std::move(e));
    }
    if (std::string e = send_all(head, payload, deadline, outcome); !e.empty()) {
      if (reused && attempt == 0 && outcome == Wait::ready) {
        close();
        continue;
      }
      return fail(std::move(e));
    }
    std::optional<http::response_parser<http::string_body>> parser(std::in_place);
    parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    parser->eager(true);
    std::string pending;    // received, not yet taken by the parser
    bool answered = false;  // any byte of a response came
    char chunk[64 * 1024];
    std::string error;
    bool retry = false;
    // The answer is never there the moment the request is sent: wait for it first instead of a
    // recv() that fails with EAGAIN (one system call less per request).
    outcome = wait(POLLIN, deadline);
    if (outcome != Wait::ready) return fail("no response");
    while (!parser->is_done()) {
      const ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
          outcome = wait(POLLIN, deadline);
          if (outcome != Wait::ready) return fail("no response");
          continue;
        }
        if (reused && attempt == 0 && !answered) {
          retry = true;
          break;
        }
        return fail(system_error("recv"));
      }
      if (n == 0) {
        if (reused && attempt == 0 && !answered) {
          retry = true;
          break;
        }
        if (parser->need_eof()) {
          boost::beast::error_code ec;
          parser->put_eof(ec);
          if (ec) return fail("response ended early: " + ec.message());
          break;
        }
        return fail("connection closed before the response ended");
      }
      answered = true;
      pending.append(chunk, static_cast<std::size_t>(n));
      while (!pending.empty() && !parser->is_done()) {
        boost::beast::error_code ec;
        const std::size_t used = parser->put(boost::asio::buffer(pending), ec);
        pending.erase(0, used);
        if (ec == http::error::need_more) break;
        if (ec) return fail("malformed response: " + ec.message());
        // An interim 1xx answer: the real one follows.
        if (parser->is_done() && parser->get().result_int() / 100 == 1) {
          parser.emplace();
          parser->body_limit(std::numeric_limits<std::uint64_t>::max());
          parser->eager(true);
        }
      }
    }
    if (retry) {
      close();
      continue;
    }
    auto message = parser->release();
    response.status = message.result_int();
    response.body = std::move(message.body());
    if (const auto type = message.find(http::field::content_type); type != message.end()) {
      response.content_type = std::string(type->value());
    }
    // Bytes past the response, or a server that closes: no reuse.
    if (!message.keep_alive() || !pending.empty()) close();
    return;
  }
}

}  // namespace podworker::worker

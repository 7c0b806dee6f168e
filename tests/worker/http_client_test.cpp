// The worker's HTTP client on plain http:// URLs (its own keep-alive transport, plain_http.h)
// against a raw TCP server that answers byte for byte as a test scripts it: a kept connection the
// server closed, chunked and close-delimited bodies, answers in pieces, timeouts, stops, refusals.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

#include "http_client.h"
#include "plain_http.h"

using namespace std::chrono_literals;
using podworker::worker::HttpClient;
using podworker::worker::parse_plain_url;

namespace {

// Accepts connections on a loopback port and runs `script` on each, in turn, on its thread.
class RawServer {
 public:
  using Script = std::function<void(int fd, int connection)>;
  explicit RawServer(Script script) : script_(std::move(script)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_fd_, 8) != 0 ||
        ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      throw std::runtime_error("raw server: no loopback port");
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::jthread([this] {
      for (int n = 0;; ++n) {
        const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) return;  // the listener was shut down
        accepted_.fetch_add(1);
        script_(fd, n);
        ::close(fd);
      }
    });
  }
  ~RawServer() {
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_ = {};
    ::close(listen_fd_);
  }
  RawServer(const RawServer&) = delete;
  RawServer& operator=(const RawServer&) = delete;
  std::string url(const std::string& path = "/x") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  int accepted() const { return accepted_.load(); }

 private:
  Script script_;
  int listen_fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::jthread thread_;  // last: joined before the rest goes
};

// Reads one request's head (and a body of Content-Length bytes); returns the head, "" at EOF.
std::string read_request(int fd) {
  std::string data;
  char buffer[4096];
  for (;;) {
    const auto end = data.find("\r\n\r\n");
    if (end != std::string::npos) {
      std::size_t length = 0;
      if (const auto at = data.find("Content-Length: "); at != std::string::npos && at < end)
        length = std::stoul(data.substr(at + 16));
      if (data.size() >= end + 4 + length) return data;
    }
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n <= 0) return {};
    data.append(buffer, static_cast<std::size_t>(n));
  }
}

void send_text(int fd, const std::string& text) {
  [[maybe_unused]] const auto n = ::send(fd, text.data(), text.size(), MSG_NOSIGNAL);
}

const std::string kOk =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}";

}  // namespace

TEST_CASE("http client: plain URLs are taken apart; others go to libcurl") {
  auto u = parse_plain_url("http://127.0.0.1:8000/v2/ep/job-take/w?gpu=a");
  REQUIRE(u);
  CHECK(u->host == "127.0.0.1");
  CHECK(u->port == "8000");
  CHECK(u->authority == "127.0.0.1:8000");
  CHECK(u->target == "/v2/ep/job-take/w?gpu=a");
  u = parse_plain_url("http://example.com");
  REQUIRE(u);
  CHECK(u->port == "80");
  CHECK(u->target == "/");
  u = parse_plain_url("http://[::1]:9/p#frag");
  REQUIRE(u);
  CHECK(u->host == "::1");
  CHECK(u->authority == "[::1]:9");
  CHECK(u->target == "/p");
  u = parse_plain_url("http://h?q=1");
  REQUIRE(u);
  CHECK(u->target == "/?q=1");
  CHECK_FALSE(parse_plain_url("https://api.runpod.ai/v2/x"));
  CHECK_FALSE(parse_plain_url("http://user:pw@host/x"));
  CHECK_FALSE(parse_plain_url("http://host/a b"));
  CHECK_FALSE(parse_plain_url("http://host:99999/x"));
  CHECK_FALSE(parse_plain_url("http:///x"));
}

TEST_CASE("http client: a kept connection the server closed is replaced, the request answered") {
  // Each connection answers one request with keep-alive, then closes without saying so.
  RawServer server([](int fd, int) {
    if (!read_request(fd).empty()) send_text(fd, kOk);
  });
  HttpClient client("", 2000ms);
  for (int i = 0; i < 3; ++i) {
    const auto r = client.post(server.url(), R"({"n":1})", "job-1", 5000ms);
    CHECK(r.status == 200);
    CHECK(r.body == R"({"ok":true})");
    CHECK(r.content_type == "application/json");
    // Let the server close its side before the next request reuses the connection.
    std::this_thread::sleep_for(20ms);
  }
  CHECK(server.accepted() == 3);
}

TEST_CASE("http client: one connection carries many requests; the request is what curl sent") {
  std::string first;
  RawServer server([&](int fd, int) {
    for (int i = 0;; ++i) {
      const std::string request = read_request(fd);
      if (request.empty()) return;
      if (i == 0) first = request;
      send_text(fd, kOk);
    }
  });
  {
    HttpClient client("Bearer k", 2000ms);
    for (int i = 0; i < 5; ++i)
      CHECK(client.post(server.url("/done?a=1"), "{}", "id-7", 5000ms).status == 200);
    CHECK(client.get(server.url("/take"), 5000ms).status == 200);
  }
  CHECK(server.accepted() == 1);
  CHECK(first.rfind("POST /done?a=1 HTTP/1.1\r\n", 0) == 0);
  CHECK(first.find("\r\nAuthorization: Bearer k\r\n") != std::string::npos);
  CHECK(first.find("\r\nContent-Type: application/json\r\n") != std::string::npos);
  CHECK(first.find("\r\nX-Request-ID: id-7\r\n") != std::string::npos);
  CHECK(first.find("\r\nContent-Length: 2\r\n\r\n{}") != std::string::npos);
}

TEST_CASE("http client: chunked, close-delimited and piecemeal answers are read whole") {
  RawServer server([](int fd, int connection) {
    if (read_request(fd).empty()) return;
    if (connection == 0) {
      // Chunked, and sent in pieces that split the head and a chunk.
      send_text(fd, "HTTP/1.1 200 OK\r\nTransfer-Enc");
      std::this_thread::sleep_for(10ms);
      send_text(fd, "oding: chunked\r\nContent-Type: text/plain\r\n\r\n5\r\nhel");
      std::this_thread::sleep_for(10ms);
      send_text(fd, "lo\r\n6\r\n world\r\n0\r\n\r\n");
    } else {
      // No length: the body ends with the connection.
      send_text(fd, "HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy ");
      std::this_thread::sleep_for(10ms);
      send_text(fd, "now");
    }
  });
  HttpClient client("", 2000ms);
  auto r = client.get(server.url(), 5000ms);
  CHECK(r.status == 200);
  CHECK(r.body == "hello world");
  CHECK(r.content_type == "text/plain");
  // The chunked answer kept the connection; the server closes it after one answer, and the
  // client connects again for this one.
  std::this_thread::sleep_for(20ms);
  r = client.get(server.url(), 5000ms);
  CHECK(r.status == 503);
  CHECK(r.body == "busy now");
  CHECK(r.retryable());
}

TEST_CASE("http client: no answer times out; a stop ends the wait at once; a refusal is an error") {
  std::atomic<bool> release{false};
  RawServer server([&](int fd, int) {
    read_request(fd);
    while (!release.load()) std::this_thread::sleep_for(5ms);
  });
  HttpClient client("", 2000ms);
  auto started = std::chrono::steady_clock::now();
  auto r = client.get(server.url(), 200ms);
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(r.status == 0);
  CHECK(r.timed_out);
  CHECK_FALSE(r.interrupted);
  CHECK(took >= 200ms);
  CHECK(took < 5s);
  release = true;

  release = false;
  std::stop_source stop;
  std::jthread stopper([&] {
    std::this_thread::sleep_for(100ms);
    stop.request_stop();
  });
  started = std::chrono::steady_clock::now();
  r = client.get(server.url(), 30000ms, stop.get_token());
  took = std::chrono::steady_clock::now() - started;
  CHECK(r.status == 0);
  CHECK(r.interrupted);
  CHECK(took < 10s);
  release = true;

  // A port nobody listens on.
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  r = client.get("http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/x", 2000ms);
  CHECK(r.status == 0);
  CHECK_FALSE(r.timed_out);
  CHECK(r.error.find("could not connect") != std::string::npos);
  CHECK(r.retryable());
}

TEST_CASE("http client: an answer cut short or malformed is an error, not a response") {
  RawServer server([](int fd, int connection) {
    if (read_request(fd).empty()) return;
    if (connection == 0) {
      send_text(fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort");
    } else {
      send_text(fd, "NOT HTTP AT ALL\r\n\r\n");
    }
  });
  HttpClient client("", 2000ms);
  auto r = client.get(server.url(), 5000ms);
  CHECK(r.status == 0);
  CHECK(r.error.find("closed before the response ended") != std::string::npos);
  r = client.get(server.url(), 5000ms);
  CHECK(r.status == 0);
  CHECK(r.error.find("malformed response") != std::string::npos);
}

TEST_CASE("http client: with a proxy configured, plain URLs keep going through it (libcurl)") {
  std::string request;
  RawServer proxy([&](int fd, int) {
    request = read_request(fd);
    send_text(fd, kOk);
  });
  ::setenv("http_proxy", proxy.url("").c_str(), 1);
  {
    HttpClient client("", 2000ms);
    CHECK(client.get("http://job-api.invalid:8000/v2/take", 5000ms).status == 200);
  }
  ::unsetenv("http_proxy");
  // A proxy is asked with the whole URL in the request line.
  CHECK(request.rfind("GET http://job-api.invalid:8000/v2/take HTTP/1.1\r\n", 0) == 0);
}

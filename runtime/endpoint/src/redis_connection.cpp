#include "redis_connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <stdexcept>

namespace podworker::endpoint {

namespace {

timeval to_timeval(std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  return tv;
}

bool parse_int(std::string_view s, int lo, int hi, int& out) {
  int v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || end != s.data() + s.size() || v < lo || v > hi) return false;
  out = v;
  return true;
}

}  // namespace

std::string RedisAddress::url() const {
  return "redis://" + host + ":" + std::to_string(port) + (db != 0 ? "/" + std::to_string(db) : "");
}

std::optional<RedisAddress> parse_redis_url(std::string_view url, std::string& error) {
  constexpr std::string_view scheme = "redis://";
  error = "expected redis://HOST:PORT[/DB], got '" + std::string(url) + "'";
  if (url.substr(0, scheme.size()) != scheme) return std::nullopt;
  std::string_view rest = url.substr(scheme.size());
  RedisAddress a;
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    if (!parse_int(rest.substr(slash + 1), 0, 1'000'000, a.db)) return std::nullopt;
    rest = rest.substr(0, slash);
  }
  const auto colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0) return std::nullopt;
  if (!parse_int(rest.substr(colon + 1), 1, 65535, a.port)) return std::nullopt;
  a.host = std::string(rest.substr(0, colon));
  error.clear();
  return a;
}

std::string_view reply_text(const redisReply& r) {
  if (r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS || r.type == REDIS_REPLY_ERROR) {
    return {r.str, r.len};
  }
  return {};
}

RedisConnection::RedisConnection(const RedisAddress& address, std::chrono::milliseconds timeout)
    : address_(address.url()) {
  ctx_.reset(redisConnectWithTimeout(address.host.c_str(), address.port, to_timeval(timeout)));
  if (!ctx_) throw RedisError("cannot connect to " + address_ + ": out of memory");
  if (ctx_->err != 0) throw RedisError("cannot connect to " + address_ + ": " + ctx_->errstr);
  if (redisSetTimeout(ctx_.get(), to_timeval(timeout)) != REDIS_OK)
    fail("setting the socket timeout");
  if (address.db != 0) {
    const std::string db = std::to_string(address.db);
    const RedisReply r = command({"SELECT", db});
    if (r->type == REDIS_REPLY_ERROR) {
      throw RedisError("cannot select database " + db + " on " + address_ + ": " +
                       std::string(reply_text(*r)));
    }
  }
}

void RedisConnection::fail(std::string_view what) {
  broken_ = true;
  throw RedisError("redis " + address_ + ": " + std::string(what) + ": " +
                   (ctx_->err != 0 ? std::string(ctx_->errstr) : std::string("connection lost")));
}

RedisReply RedisConnection::command(const std::vector<std::string_view>& args) {
  send(args);
  return next_reply();
}

void RedisConnection::send(const std::vector<std::string_view>& args) {
  append(args);
  flush();
}

void RedisConnection::append(const std::vector<std::string_view>& args) {
  if (broken_) fail("command on a broken connection");
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  if (redisAppendCommandArgv(ctx_.get(), static_cast<int>(argv.size()), argv.data(),
                             lengths.data()) != REDIS_OK) {
    fail("queueing a command");
  }
}

void RedisConnection::flush() {
  if (broken_) fail("command on a broken connection");
  int done = 0;
  while (done == 0) {
    if (redisBufferWrite(ctx_.get(), &done) != REDIS_OK) fail("sending a command");
  }
}

RedisReply RedisConnection::next_reply() {
  void* raw = nullptr;
  if (redisGetReply(ctx_.get(), &raw) != REDIS_OK || raw == nullptr) fail("reading a reply");
  return RedisReply(static_cast<redisReply*>(raw));
}

RedisReply RedisConnection::buffered_reply() {
  void* raw = nullptr;
  if (redisGetReplyFromReader(ctx_.get(), &raw) != REDIS_OK) fail("parsing a reply");
  return RedisReply(static_cast<redisReply*>(raw));
}

bool RedisConnection::still_open() const {
  if (broken_) return false;
  pollfd p{ctx_->fd, POLLIN, 0};
  // Nothing may arrive on an idle connection but the end of it.
  return ::poll(&p, 1, 0) == 0;
}

void RedisConnection::read_some() {
  if (redisBufferRead(ctx_.get()) != REDIS_OK) fail("reading");
}

}  // namespace podworker::endpoint

namespace podworker::endpoint {

bool RedisConnection::write_all(std::string_view wire) const noexcept {
  while (!wire.empty()) {
    // MSG_NOSIGNAL: a peer gone is an error here, not a SIGPIPE for the process. The socket is
    // blocking with the connection's timeout (SO_SNDTIMEO), so a full buffer waits at most that.
    const ssize_t n = ::send(ctx_->fd, wire.data(), wire.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    wire.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

void RedisConnection::shut_down() const noexcept {
  ::shutdown(ctx_->fd, SHUT_RDWR);
}

std::string RedisConnection::format(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  char* raw = nullptr;
  const int n =
      redisFormatCommandArgv(&raw, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (n < 0 || raw == nullptr) throw RedisError("formatting a redis command: out of memory");
  const std::unique_ptr<char, void (*)(char*)> owned(raw, redisFreeCommand);
  return std::string(raw, static_cast<std::size_t>(n));
}

}  // namespace podworker::endpoint

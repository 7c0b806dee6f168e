// One hiredis connection, owned: redisContext and every redisReply live in unique_ptrs with
// hiredis's own free functions as deleters, so no error path leaks either. Blocking I/O with a
// timeout: a Redis that stops answering fails the command instead of holding the caller forever.
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "podworker/wake_fd.h"
#include "store_factory.h"

namespace podworker::endpoint {

// The server could not be reached, or a command's reply did not come back. The connection that
// threw is broken and must not be reused.
class RedisError : public StoreUnavailable {
 public:
  using StoreUnavailable::StoreUnavailable;
};

struct RedisReplyDeleter {
  void operator()(redisReply* r) const noexcept {
    if (r != nullptr) freeReplyObject(r);
  }
};
using RedisReply = std::unique_ptr<redisReply, RedisReplyDeleter>;

// redis://HOST:PORT[/DB]
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  std::string url() const;
};
// nullopt (and a message in `error`) when `url` is not of that form.
std::optional<RedisAddress> parse_redis_url(std::string_view url, std::string& error);

class RedisConnection {
 public:
  // Connects and selects the database; throws RedisError with the server's address on failure.
  RedisConnection(const RedisAddress& address, std::chrono::milliseconds timeout);
  RedisConnection(RedisConnection&&) noexcept = default;
  RedisConnection& operator=(RedisConnection&&) noexcept = default;

  // Sends one command and waits for its reply. An error reply (-ERR ...) is returned as a reply of
  // type REDIS_REPLY_ERROR; only I/O failures throw (and leave the connection broken()).
  RedisReply command(const std::vector<std::string_view>& args);
  // Sends a command without waiting for the reply (a subscriber reads replies as they come).
  void send(const std::vector<std::string_view>& args);
  // Pipelining: append() queues commands in the output buffer, flush() writes them all, and
  // next_reply() waits for the replies one by one, in the order the commands were appended.
  void append(const std::vector<std::string_view>& args);
  void flush();
  RedisReply next_reply();
  // The next reply already received, without blocking; null when none is complete yet.
  RedisReply buffered_reply();
  // Reads what the socket has (after poll() said it is readable). Throws when the peer is gone.
  void read_some();
  // For a pipeline whose callers write from their own threads while one thread reads the replies
  // (redis_pipeline.h): writes `wire` (format()'s RESP) straight to the socket, bypassing hiredis's
  // output buffer, which only the reading thread may touch. False when the socket failed or the
  // send timeout ran out; the caller then shuts the socket down, and the reader learns of it.
  bool write_all(std::string_view wire) const noexcept;
  // Ends both directions of the socket, so a reader's poll() and a writer's send() return at once.
  void shut_down() const noexcept;
  // One command in RESP, formatted by hiredis (for write_all()).
  static std::string format(const std::vector<std::string>& args);

  bool broken() const { return broken_; }
  // For an idle connection (no reply outstanding): false when the server has closed it (a Redis
  // restart), so a pool drops it before sending a command whose fate would be unknown.
  bool still_open() const;
  int fd() const { return ctx_->fd; }

 private:
  [[noreturn]] void fail(std::string_view what);

  struct ContextDeleter {
    void operator()(redisContext* c) const noexcept {
      if (c != nullptr) redisFree(c);
    }
  };
  std::unique_ptr<redisContext, ContextDeleter> ctx_;
  std::string address_;
  bool broken_ = false;
};

// The text of a string, status or error reply ("" for other types).
std::string_view reply_text(const redisReply& r);

}  // namespace podworker::endpoint

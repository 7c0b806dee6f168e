// The HTTP layer: Beast connections as C++20 coroutines, one strand per connection, routing to the
// job store. Long polls wait on a timer that a store watch cancels, so a waiting request costs a
// coroutine frame and no thread.
#include "podworker/endpoint/server.h"

#include <sys/socket.h>

#include <cerrno>
#include <condition_variable>
#include <limits>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <tuple>
#include <thread>
#include <unordered_map>
#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "auth.h"
#include "http_metrics.h"
#include "memory_store.h"
#include "message_text.h"
#include "metered_store.h"
#include "openai.h"
#include "openapi_document.h"
#include "podworker/ids.h"
#include "podworker/json.h"
#include "podworker/log.h"
#include "podworker/metrics.h"
#include "podworker/thread_name.h"
#include "rate_limit.h"
#include "routes.h"
#include "store_factory.h"
#include "web_assets.h"
#include "webhook.h"

namespace podworker::endpoint {

namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using asio::awaitable;
using Clock = std::chrono::steady_clock;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;
constexpr std::uint32_t kHeaderLimit = 64 * 1024;

inline auto redirect(beast::error_code& ec) { return asio::redirect_error(asio::use_awaitable, ec); }

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

// A long poll's wake-up: fire() may run on any thread (inside a store watch); the cancel is posted
// to the timer's strand, which is the waiting coroutine's strand, so it can never slip in between
// the coroutine's last check and the start of its wait (see wait_for()).
struct Waiter : std::enable_shared_from_this<Waiter> {
  explicit Waiter(const asio::any_io_executor& ex) : timer(ex) {}
  void fire() {
    if (fired.exchange(true)) return;
    asio::post(timer.get_executor(), [self = shared_from_this()] { self->timer.cancel(); });
  }
  asio::steady_timer timer;
  std::atomic<bool> fired{false};
};

struct Reply {
  http::status status = http::status::ok;
  std::string body;
  std::string_view allow;  // for 405
  std::function<void()> undelivered = nullptr;  // run when the response cannot be written
  std::string_view content_type = {};  // empty: application/json
};

// Whether the client of `socket` is still there. A closed peer (a worker process that exited or
// was killed) leaves an end of stream or an error in the receive queue; bytes of a next request
// mean it is there.
bool peer_connected(tcp::socket& socket) {
  if (!socket.is_open()) return true;  // serve_bytes(): an in-process caller, always there
  char byte = 0;
  const ssize_t n = ::recv(socket.native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n > 0) return true;
  if (n == 0) return false;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
}

// Ends a worker's long poll when its client goes away (the process exited or was killed), so
// nothing is handed to a dead connection: the socket turning readable (end of stream, reset) wakes
// the wait through slot(), and gone() is asked before anything is taken. The socket wait is
// cancelled on destruction, before the response is written.
class ClientWatch {
 public:
  explicit ClientWatch(tcp::socket& socket) : socket_(socket), waiter_(std::make_shared<std::shared_ptr<Waiter>>()) {
    socket_.async_wait(tcp::socket::wait_read, [waiter = waiter_](const beast::error_code& ec) {
      if (!ec && *waiter) (*waiter)->fire();
    });
  }
  ~ClientWatch() {
    beast::error_code ignored;
    socket_.cancel(ignored);
    waiter_->reset();
  }
  ClientWatch(const ClientWatch&) = delete;
  ClientWatch& operator=(const ClientWatch&) = delete;
  bool gone() { return !peer_connected(socket_); }
  std::shared_ptr<Waiter>* slot() { return waiter_.get(); }

 private:
  tcp::socket& socket_;
  std::shared_ptr<std::shared_ptr<Waiter>> waiter_;
};

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(Writer& w, std::string_view s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); }

Reply error_reply(http::status status, std::string_view message) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("error");
  write_string(w, utf8_for_message(message));
  w.EndObject();
  return {status, std::string(buffer.GetString(), buffer.GetSize()), {}};
}

// A worker's result and stream posts answer alike: the store decides whether the job still takes them.
Reply post_reply(PostOutcome outcome, std::string_view job_id) {
  switch (outcome) {
    case PostOutcome::accepted: return {http::status::ok, R"({"status":"accepted"})", {}};
    case PostOutcome::ignored: return {http::status::ok, R"({"status":"ignored"})", {}};
    case PostOutcome::refused:
      return error_reply(http::status::conflict,
                         "job " + std::string(job_id) + " is not held by this worker; nothing was changed");
    case PostOutcome::not_found: break;
  }
  return error_reply(http::status::not_found, "job " + std::string(job_id) + " not found");
}

// A submit the queue cap refused: 429, as for any overload a client should back off from.
Reply queue_full_reply(const SubmitResult& refused, std::size_t cap) {
  return error_reply(http::status::too_many_requests,
                     "queue full: queued jobs hold " + std::to_string(refused.queued_bytes) + " bytes and this job's " +
                         std::to_string(refused.job_bytes) + " bytes would pass the limit of " + std::to_string(cap) +
                         " bytes (--max-queued-bytes); nothing was queued, retry once workers have taken jobs");
}

std::string id_status_json(std::string_view id, std::string_view status) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("id");
  write_string(w, id);
  w.Key("status");
  write_string(w, status);
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Method method_of(http::verb v) {
  if (v == http::verb::get || v == http::verb::head) return v == http::verb::get ? Method::get : Method::other;
  return v == http::verb::post ? Method::post : Method::other;
}

bool contains_token(std::string_view haystack, std::string_view needle) {
  if (needle.size() > haystack.size()) return false;
  for (std::size_t i = 0; i + needle.size() <= haystack.size(); ++i) {
    bool eq = true;
    for (std::size_t j = 0; j < needle.size() && eq; ++j) {
      eq = std::tolower(static_cast<unsigned char>(haystack[i + j])) == needle[j];
    }
    if (eq) return true;
  }
  return false;
}

void log_exception(std::exception_ptr p, std::string_view where) {
  if (!p) return;
  try {
    std::rethrow_exception(p);
  } catch (const std::exception& e) {
    log::error(std::string(where) + ": " + e.what());
  } catch (...) {
    log::error(std::string(where) + ": unknown exception");
  }
}

struct EndpointState {
  EndpointState(std::string endpoint_id, std::unique_ptr<JobStore> job_store, const Options& o)
      : id(std::move(endpoint_id)),
        store(std::move(job_store)),
        run(o.limits.run, o.rate_window),
        runsync(o.limits.runsync, o.rate_window),
        status(o.limits.status, o.rate_window),
        stream(o.limits.stream, o.rate_window),
        cancel(o.limits.cancel, o.rate_window),
        purge_queue(o.limits.purge_queue, o.rate_window),
        openai(o.limits.openai, o.rate_window) {}
  std::string id;
  std::unique_ptr<JobStore> store;
  MeteredStore* metered = nullptr;  // `store` itself, for its dashboard view
  RateLimiter run, runsync, status, stream, cancel, purge_queue, openai;
};

// Whether a request is for the OpenAI-compatible routes (a known one or not), whose errors take
// OpenAI's shape.
bool is_openai_request(std::string_view target, const std::optional<Route>& route) {
  if (route) return route->op == Op::openai_chat || route->op == Op::openai_models || route->op == Op::openai_model;
  if (target.starts_with("/v2/")) {
    const auto slash = target.find('/', 4);
    target = slash == std::string_view::npos ? std::string_view{} : target.substr(slash);
  }
  return target == "/openai" || target.starts_with("/openai/") || target.starts_with("/openai?");
}

// "http://host:port", an IPv6 host in brackets.
std::string http_url(const std::string& host, std::uint16_t port) {
  const bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

// The job ids a ping reports (?job_id=a,b,...), capped: they come from the worker.
std::vector<std::string> ping_job_ids(std::string_view query) {
  constexpr std::size_t kMaxIds = 1024;
  std::vector<std::string> ids;
  if (auto list = query_param(query, "job_id")) {
    std::string_view rest = *list;
    while (!rest.empty() && ids.size() < kMaxIds) {
      const auto comma = rest.find(',');
      if (comma != 0) ids.emplace_back(rest.substr(0, comma));
      rest = comma == std::string_view::npos ? std::string_view{} : rest.substr(comma + 1);
    }
  }
  return ids;
}

// ---- the store, awaited (store.h, "The asynchronous seam")

template <class C>
struct CompletionValue;
template <class T>
struct CompletionValue<std::function<void(std::exception_ptr, T)>> {
  using type = T;
};
// The value an async store operation completes with: T of its last parameter, a Completion<T>.
template <class M>
struct OpValue;
template <class... P>
struct OpValue<void (JobStore::*)(P...)> {
  using type = typename CompletionValue<std::tuple_element_t<sizeof...(P) - 1, std::tuple<P...>>>::type;
};

// co_await ask<&JobStore::async_status>(store, id): the operation's value, or its exception
// rethrown. A store that completes inline (MemoryStore) is simply called. Otherwise the completion
// runs on the store's thread and posts the resumption to this coroutine's executor (the
// connection's strand), so the I/O thread serves other connections meanwhile.
template <auto Op, class... A>
awaitable<typename OpValue<decltype(Op)>::type> ask(JobStore& store, A... args) {
  using T = typename OpValue<decltype(Op)>::type;
  if (store.completes_inline()) {
    std::optional<T> value;
    std::exception_ptr error;
    (store.*Op)(std::move(args)..., [&](std::exception_ptr e, T v) {
      error = e;
      value.emplace(std::move(v));
    });
    if (error) std::rethrow_exception(error);
    co_return std::move(*value);
  }
  const auto ex = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<const asio::use_awaitable_t<>&, void(std::exception_ptr, T)>(
      [&](auto handler) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        // The exception moves with the resumption: the store's thread keeps no reference to it.
        (store.*Op)(std::move(args)..., [ex, shared](std::exception_ptr e, T v) {
          asio::post(ex, [shared, e = std::move(e), v = std::move(v)]() mutable {
            std::move(*shared)(std::move(e), std::move(v));
          });
        });
      },
      asio::use_awaitable);
}

// The start of a worker request is a sign of life. Nothing waits for it: on a pipelined store it
// still runs before the request's next operation.
void sign_of_life(JobStore& store, std::string_view worker) {
  store.async_worker_begin(std::string(worker), [](std::exception_ptr, Done) {});
}

}  // namespace

class Server::Impl {
 public:
  explicit Impl(Options options);
  ~Impl();
  std::uint16_t start();
  void stop();
  std::string serve_bytes(std::string_view input);

  Options options_;
  std::uint16_t port_ = 0;

 private:
  // Counts a request being served, so stop() can wait for it.
  class InFlight {
   public:
    explicit InFlight(Impl& impl) : impl_(impl) { impl_.in_flight_.fetch_add(1); }
    ~InFlight() {
      if (impl_.in_flight_.fetch_sub(1) == 1) {
        std::lock_guard lock(impl_.idle_mu_);
        impl_.idle_cv_.notify_all();
      }
    }
    InFlight(const InFlight&) = delete;
    InFlight& operator=(const InFlight&) = delete;

   private:
    Impl& impl_;
  };

  awaitable<void> accept_loop();
  awaitable<void> sweep_loop();
  awaitable<void> session(tcp::socket socket);
  awaitable<void> drain(beast::tcp_stream& stream);
  awaitable<void> serve_buffer(std::string_view input, std::string& output);
  // `undelivered` receives what to run should the response not reach the client (a job-take's
  // give-back).
  awaitable<Response> respond(Request& req, const std::optional<Route>& route,
                              beast::tcp_stream& stream, bool& consumed,
                              std::function<void()>& undelivered);
  Response too_large_response(const Request& req, const std::optional<Route>& route,
                              std::size_t limit) const;
  awaitable<Reply> dispatch(Request& req, const std::optional<Route>& route, beast::tcp_stream& stream,
                            bool& consumed);
  awaitable<Reply> run(EndpointState& ep, Request& req);
  awaitable<Reply> runsync(EndpointState& ep, Request& req, const Route& route);
  awaitable<Reply> stream_json(EndpointState& ep, const Route& route);
  awaitable<void> stream_sse(EndpointState& ep, const Route& route, beast::tcp_stream& stream);
  awaitable<Reply> job_take(EndpointState& ep, const Route& route, beast::tcp_stream& stream);
  awaitable<Reply> openai_chat(EndpointState& ep, Request& req, std::string openai_route, beast::tcp_stream& stream,
                               bool& consumed);
  awaitable<void> openai_stream(EndpointState& ep, const std::string& id, beast::tcp_stream& stream);
  awaitable<Reply> job_stop(EndpointState& ep, const Route& route, beast::tcp_stream& stream);
  Reply health(const HealthCounts& h);
  awaitable<Reply> recent_jobs(EndpointState& ep);
  // `current`, when given, is kept pointing at the waiter of the moment, for a wake-up from outside
  // the store.
  template <class Check>
  awaitable<bool> wait_for(JobStore& store, Topic topic, std::string_view key, Clock::time_point deadline,
                           Check check, std::shared_ptr<Waiter>* current = nullptr);
  std::size_t body_limit(const std::optional<Route>& route) const;
  RateLimiter* limiter(EndpointState& ep, Op op);
  void on_terminal(TerminalEvent event);

  PolicyLimits policy_limits_;
  // The served model's "created" time (Unix seconds): when this endpoint started serving it.
  const std::int64_t model_created_ =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  // Before the stores, which register their families in it, and destroyed after them.
  metrics::Registry registry_;
  std::unique_ptr<HttpMetrics> http_metrics_ = std::make_unique<HttpMetrics>(registry_);
  // Destroyed after io_context_: coroutine frames destroyed with it still unsubscribe from stores,
  // release rate-limit permits and decrement in_flight_.
  std::unordered_map<std::string, std::unique_ptr<EndpointState>, StringHash, std::equal_to<>> endpoints_;
  EndpointState* default_endpoint_ = nullptr;
  std::atomic<bool> stopping_{false};
  std::atomic<int> in_flight_{0};
  std::mutex idle_mu_;
  std::condition_variable idle_cv_;
  std::mutex state_mu_;
  bool started_ = false;
  bool stopped_ = false;

  WebhookSender webhooks_;
  asio::io_context io_context_;
  tcp::acceptor acceptor_;
  asio::steady_timer sweep_timer_;
  std::vector<std::jthread> threads_;
};

Server::Impl::Impl(Options options)
    : options_(std::move(options)),
      policy_limits_{options_.execution_timeout_default, options_.execution_timeout_min,
                     options_.execution_timeout_max, options_.ttl_default, options_.ttl_min, options_.ttl_max},
      webhooks_(WebhookPolicy{options_.webhook_retries, options_.webhook_retry_delay, options_.webhook_timeout,
                              options_.webhook_ca_file}),
      io_context_(static_cast<int>(std::max(1u, options_.io_threads))),
      acceptor_(asio::make_strand(io_context_)),
      sweep_timer_(asio::make_strand(io_context_)) {
  if (options_.endpoint_ids.empty()) options_.endpoint_ids.push_back("local");
  StoreOptions so;
  so.retention = options_.retention;
  so.runsync_retention = options_.runsync_retention;
  so.heartbeat_grace = options_.heartbeat_grace;
  so.retry_limit = options_.retry_limit;
  so.max_queued_bytes = options_.max_queued_bytes;
  so.clock = std::make_shared<const SteadyStoreClock>();
  for (const std::string& id : options_.endpoint_ids) {
    if (id.empty() || id.find('/') != std::string::npos) throw std::invalid_argument("bad endpoint id '" + id + "'");
    if (endpoints_.contains(id)) continue;
    auto store = std::make_unique<MeteredStore>(
        make_store(options_.store, id, so, [this](TerminalEvent e) { on_terminal(std::move(e)); }), registry_, id,
        so.clock);
    MeteredStore* metered = store.get();
    auto state = std::make_unique<EndpointState>(id, std::move(store), options_);
    state->metered = metered;
    endpoints_.emplace(id, std::move(state));
  }
  default_endpoint_ = endpoints_.find(options_.endpoint_ids.front())->second.get();
}

Server::Impl::~Impl() { stop(); }

std::uint16_t Server::Impl::start() {
  std::lock_guard lock(state_mu_);
  if (started_) throw std::logic_error("endpoint server already started");
  tcp::resolver resolver(io_context_);
  beast::error_code ec;
  const auto results = resolver.resolve(options_.host, std::to_string(options_.port),
                                        tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    throw std::runtime_error("cannot resolve listen address " + options_.host + ": " + ec.message());
  }
  const tcp::endpoint address = results.begin()->endpoint();
  acceptor_.open(address.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(address, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    throw std::runtime_error("cannot listen on " + options_.host + ":" + std::to_string(options_.port) + ": " +
                             ec.message());
  }
  port_ = acceptor_.local_endpoint().port();
  started_ = true;

  if (options_.api_key.empty()) {
    log::warn("endpoint: authentication is off (no API key: set --api-key or PODWORKER_API_KEY)");
  }
  if (!options_.rate_limit) log::info("endpoint: rate limits are off");
  const std::string base = http_url(options_.host, port_);
  log::info("endpoint: dashboard at " + base + "/, API docs at " + base + "/docs, Prometheus metrics at " + base +
            "/metrics");

  asio::co_spawn(acceptor_.get_executor(), accept_loop(),
                 [](std::exception_ptr p) { log_exception(p, "endpoint accept loop"); });
  asio::co_spawn(sweep_timer_.get_executor(), sweep_loop(),
                 [](std::exception_ptr p) { log_exception(p, "endpoint sweeper"); });
  const unsigned n = std::max(1u, options_.io_threads);
  for (unsigned i = 0; i < n; ++i) {
    threads_.emplace_back([this] {
      name_this_thread("pw-http-io");
      // A handler that throws must not take the whole server down with it.
      for (;;) {
        try {
          io_context_.run();
          return;
        } catch (const std::exception& e) {
          log::error(std::string("endpoint I/O thread: ") + e.what());
        }
      }
    });
  }
  return port_;
}

void Server::Impl::stop() {
  {
    std::lock_guard lock(state_mu_);
    if (!started_ || stopped_) return;
    stopped_ = true;
  }
  stopping_.store(true);
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ignored;
    acceptor_.close(ignored);
  });
  for (auto& [id, ep] : endpoints_) ep->store->wake_all();
  {
    std::unique_lock lock(idle_mu_);
    idle_cv_.wait_for(lock, options_.shutdown_timeout, [this] { return in_flight_.load() == 0; });
  }
  if (in_flight_.load() != 0) {
    log::warn("endpoint: " + std::to_string(in_flight_.load()) + " request(s) still running at shutdown");
  }
  io_context_.stop();
  threads_.clear();  // joins
  // Operations still pending complete now, while the executor their completions post to exists.
  for (auto& [id, ep] : endpoints_) ep->store->close();
  webhooks_.stop();
}

void Server::Impl::on_terminal(TerminalEvent event) {
  // A server never started (serve_bytes(), the fuzzer's entry) delivers nothing over the network.
  if (stopping_.load() || !started_) return;
  webhooks_.send(std::move(event));
}

awaitable<void> Server::Impl::accept_loop() {
  for (;;) {
    beast::error_code ec;
    tcp::socket socket = co_await acceptor_.async_accept(asio::make_strand(io_context_), redirect(ec));
    if (stopping_.load() || !acceptor_.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: wait a little instead of spinning.
      log::warn("endpoint: accept failed: " + ec.message());
      asio::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(50));
      co_await pause.async_wait(redirect(ec));
      continue;
    }
    socket.set_option(tcp::no_delay(true), ec);
    auto ex = socket.get_executor();
    asio::co_spawn(ex, session(std::move(socket)), [](std::exception_ptr p) { log_exception(p, "endpoint connection"); });
  }
}

awaitable<void> Server::Impl::sweep_loop() {
  for (;;) {
    sweep_timer_.expires_after(options_.sweep_interval);
    beast::error_code ec;
    co_await sweep_timer_.async_wait(redirect(ec));
    if (stopping_.load()) co_return;
    for (auto& [id, ep] : endpoints_) co_await ask<&JobStore::async_sweep>(*ep->store);
  }
}

std::size_t Server::Impl::body_limit(const std::optional<Route>& route) const {
  if (!route) return options_.max_other_body;
  switch (route->op) {
    case Op::run: return options_.max_run_body;
    case Op::runsync:
    case Op::openai_chat: return options_.max_runsync_body;
    case Op::job_done:
    case Op::job_stream: return options_.max_worker_body;
    default: return options_.max_other_body;
  }
}

awaitable<void> Server::Impl::session(tcp::socket socket) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  beast::error_code ec;
  while (!stopping_.load()) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    // The parser checks Content-Length against its body limit while still reading the header; the
    // real, per-route limit is only known once the target is parsed, so it is set after that.
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    stream.expires_after(options_.idle_timeout);
    co_await http::async_read_header(stream, buffer, parser, redirect(ec));
    if (ec) break;
    InFlight in_flight(*this);
    const std::optional<Route> route = parse_route(sv(parser.get().target()));
    const std::size_t limit = body_limit(route);
    const auto content_length = parser.content_length();
    bool too_large = content_length && *content_length > limit;
    if (!too_large) {
      parser.body_limit(limit);
      if (contains_token(sv(parser.get()[http::field::expect]), "100-continue")) {
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        co_await asio::async_write(stream, asio::buffer(kContinue.data(), kContinue.size()), redirect(ec));
        if (ec) break;
      }
      co_await http::async_read(stream, buffer, parser, redirect(ec));
      if (ec == http::error::body_limit) {
        too_large = true;
      } else if (ec) {
        break;
      }
    }
    Request& req = parser.get();
    if (too_large) {
      Response res = too_large_response(req, route, limit);
      co_await http::async_write(stream, res, redirect(ec));
      if (!ec) co_await drain(stream);
      break;
    }
    stream.expires_never();
    bool consumed = false;
    std::function<void()> undelivered;
    Response res = co_await respond(req, route, stream, consumed, undelivered);
    if (consumed) co_return;  // an SSE response owned the connection and closed it
    const bool keep_alive = res.keep_alive();
    stream.expires_after(options_.idle_timeout);
    co_await http::async_write(stream, res, redirect(ec));
    if (ec && undelivered) undelivered();
    if (ec || !keep_alive) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

Response Server::Impl::too_large_response(const Request& req, const std::optional<Route>& route,
                                          std::size_t limit) const {
  Reply reply = error_reply(
      http::status::payload_too_large,
      "request body exceeds the limit of " + std::to_string(limit) + " bytes for this route");
  if (is_openai_request(sv(req.target()), route)) reply.body = openai_shaped_error(413, reply.body);
  http_metrics_->request(route ? std::optional(route->op) : std::nullopt, 413);
  Response res{reply.status, req.version()};
  res.set(http::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = std::move(reply.body);
  res.prepare_payload();
  return res;
}

awaitable<Response> Server::Impl::respond(Request& req, const std::optional<Route>& route,
                                          beast::tcp_stream& stream, bool& consumed,
                                          std::function<void()>& undelivered) {
  Reply reply;
  try {
    reply = co_await dispatch(req, route, stream, consumed);
  } catch (const StoreUnavailable& e) {
    if (consumed) throw;  // a streamed response had begun: only closing the connection is left
    log::warn(std::string("endpoint: job store unavailable: ") + e.what());
    reply = error_reply(http::status::service_unavailable, "job store unavailable; retry later");
  }
  const std::optional<Op> op = route ? std::optional(route->op) : std::nullopt;
  if (consumed) {
    http_metrics_->request(op, 200);  // a stream's 200 went out with its first bytes
    co_return Response{};
  }
  http_metrics_->request(op, static_cast<int>(reply.status));
  undelivered = std::move(reply.undelivered);
  // OpenAI clients read errors from {"error": {"message", "type"}}.
  if (is_openai_request(sv(req.target()), route) && static_cast<int>(reply.status) >= 400) {
    reply.body = openai_shaped_error(static_cast<int>(reply.status), reply.body);
  }
  Response res{reply.status, req.version()};
  res.set(http::field::server, "podworker");
  if (reply.status != http::status::no_content) {
    const std::string_view type = reply.content_type.empty() ? "application/json" : reply.content_type;
    res.set(http::field::content_type, beast::string_view(type.data(), type.size()));
  }
  if (reply.content_type.starts_with("text/html")) {
    // The pages show job outputs: nothing but this server's own scripts may run in them.
    res.set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:");
    res.set(http::field::cache_control, "no-cache");
  }
  if (!reply.allow.empty())
    res.set(http::field::allow, beast::string_view(reply.allow.data(), reply.allow.size()));
  res.keep_alive(req.keep_alive() && !stopping_.load());
  res.body() = std::move(reply.body);
  res.prepare_payload();
  co_return res;
}

// The in-process twin of session(): the same parser limits, the same respond(), on bytes instead of
// a socket. The stream is never opened, so a streamed answer finds its client already gone.
awaitable<void> Server::Impl::serve_buffer(std::string_view input, std::string& output) {
  beast::tcp_stream stream(co_await asio::this_coro::executor);
  while (!input.empty() && !stopping_.load()) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(kHeaderLimit);
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    beast::error_code ec;
    // put() stops after the header until eager(true), so the body gets the route's limit.
    const auto feed = [&] {
      while (!parser.is_done() && !(parser.is_header_done() && !parser.eager())) {
        const std::size_t used = parser.put(asio::buffer(input.data(), input.size()), ec);
        input.remove_prefix(used);
        if (ec == http::error::need_more && used != 0) ec = {};
        if (ec) return;
        if (used == 0) {  // the bytes end mid-message: a connection would wait, then close
          ec = http::error::need_more;
          return;
        }
      }
    };
    feed();
    if (ec) break;  // malformed, or cut short: a connection would be closed
    const std::optional<Route> route = parse_route(sv(parser.get().target()));
    const std::size_t limit = body_limit(route);
    const auto content_length = parser.content_length();
    bool too_large = content_length && *content_length > limit;
    if (!too_large) {
      parser.body_limit(limit);
      parser.eager(true);
      feed();
      if (ec == http::error::body_limit) {
        too_large = true;
      } else if (ec) {
        break;
      }
    }
    Request& req = parser.get();
    Response res;
    bool consumed = false;
    if (too_large) {
      res = too_large_response(req, route, limit);
    } else {
      std::function<void()> undelivered;  // the output buffer always takes the answer
      res = co_await respond(req, route, stream, consumed, undelivered);
    }
    if (consumed) break;
    std::ostringstream text;
    text << res;
    output += text.str();
    if (too_large || !res.keep_alive()) break;
  }
}

std::string Server::Impl::serve_bytes(std::string_view input) {
  {
    std::lock_guard lock(state_mu_);
    if (started_)
      throw std::logic_error("serve_bytes() is for an endpoint server that was not started");
  }
  std::string output;
  bool done = false;
  std::exception_ptr failure;
  asio::co_spawn(io_context_, serve_buffer(input, output), [&](std::exception_ptr p) {
    done = true;
    failure = p;
  });
  io_context_.restart();
  while (!done && io_context_.run_one() != 0) {
  }
  if (failure) std::rethrow_exception(failure);
  return output;
}

// After a 413 the client may still be sending the body: read and discard it (bounded) so it gets
// to read our answer instead of a connection reset.
awaitable<void> Server::Impl::drain(beast::tcp_stream& stream) {
  beast::error_code ec;
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
  stream.expires_after(std::chrono::seconds(10));
  std::vector<char> scratch(64 * 1024);
  std::size_t total = 0;
  while (total < (std::size_t{512} << 20)) {
    const std::size_t n = co_await stream.async_read_some(asio::buffer(scratch), redirect(ec));
    if (ec) break;
    total += n;
  }
}

RateLimiter* Server::Impl::limiter(EndpointState& ep, Op op) {
  switch (op) {
    case Op::run: return &ep.run;
    case Op::runsync: return &ep.runsync;
    case Op::status: return &ep.status;
    case Op::stream: return &ep.stream;
    case Op::cancel: return &ep.cancel;
    case Op::purge_queue: return &ep.purge_queue;
    case Op::openai_chat:
    case Op::openai_models:
    case Op::openai_model: return &ep.openai;
    default: return nullptr;
  }
}

template <class Check>
awaitable<bool> Server::Impl::wait_for(JobStore& store, Topic topic, std::string_view key,
                                       Clock::time_point deadline, Check check, std::shared_ptr<Waiter>* current) {
  const auto ex = co_await asio::this_coro::executor;
  Subscription subscription;
  for (;;) {
    auto waiter = std::make_shared<Waiter>(ex);
    if (current != nullptr) *current = waiter;
    // Subscribe before checking: a change between the check and the wait then still wakes us. The
    // watch that woke us goes only after the check: a queue watch is woken for one job, and
    // dropping it first would wake another poller for the job this one is about to take.
    Subscription next = store.watch(topic, key, [waiter] { waiter->fire(); });
    const bool done = co_await check();
    subscription = std::move(next);
    if (done) co_return true;
    if (stopping_.load() || Clock::now() >= deadline) co_return false;
    waiter->timer.expires_at(deadline);
    if (!waiter->fired.load()) {
      beast::error_code ec;
      co_await waiter->timer.async_wait(redirect(ec));
    }
  }
}

awaitable<Reply> Server::Impl::dispatch(Request& req, const std::optional<Route>& route, beast::tcp_stream& stream,
                                        bool& consumed) {
  // The API's description and the pages hold no data: they are served without the key, as API
  // documents are (the pages ask for the key and send it with the API requests they make).
  const bool public_route = route && (route->op == Op::openapi || route->op == Op::dashboard ||
                                      route->op == Op::docs || route->op == Op::asset);
  if (!public_route && !options_.api_key.empty() && !authorized(sv(req[http::field::authorization]), options_.api_key)) {
    co_return error_reply(http::status::unauthorized, "missing or invalid API key in the Authorization header");
  }
  if (!route) co_return error_reply(http::status::not_found, "no such route: " + std::string(sv(req.target())));
  EndpointState* ep = default_endpoint_;
  if (!route->endpoint.empty()) {
    auto it = endpoints_.find(route->endpoint);
    if (it == endpoints_.end()) {
      co_return error_reply(http::status::not_found, "unknown endpoint id '" + std::string(route->endpoint) + "'");
    }
    ep = it->second.get();
  }
  if (!method_allowed(route->op, method_of(req.method()))) {
    Reply r = error_reply(http::status::method_not_allowed,
                          "method " + std::string(sv(req.method_string())) + " not allowed here");
    r.allow = allowed_methods(route->op);
    co_return r;
  }
  RateLimiter::Permit permit;
  if (options_.rate_limit) {
    if (RateLimiter* rl = limiter(*ep, route->op); rl != nullptr && !rl->try_acquire(permit)) {
      http_metrics_->rate_limited(route->op);
      co_return error_reply(http::status::too_many_requests, "rate limit exceeded for this route");
    }
  }
  JobStore& store = *ep->store;
  const std::string_view arg1 = route->arg1;
  switch (route->op) {
    case Op::run: co_return co_await run(*ep, req);
    case Op::runsync: co_return co_await runsync(*ep, req, *route);
    case Op::status: {
      auto snap = co_await ask<&JobStore::async_status>(store, std::string(arg1));
      if (!snap) co_return error_reply(http::status::not_found, "job " + std::string(arg1) + " not found");
      co_return Reply{http::status::ok, render_status(*snap), {}};
    }
    case Op::stream:
      if (contains_token(sv(req[http::field::accept]), "text/event-stream")) {
        if (!co_await ask<&JobStore::async_status>(store, std::string(arg1))) co_return error_reply(http::status::not_found, "job " + std::string(arg1) + " not found");
        consumed = true;
        co_await stream_sse(*ep, *route, stream);
        co_return Reply{};
      }
      co_return co_await stream_json(*ep, *route);
    case Op::cancel: {
      const auto st = co_await ask<&JobStore::async_cancel>(store, std::string(arg1));
      if (!st) co_return error_reply(http::status::not_found, "job " + std::string(arg1) + " not found");
      co_return Reply{http::status::ok, id_status_json(arg1, status_name(*st)), {}};
    }
    case Op::retry:
      switch (co_await ask<&JobStore::async_retry>(store, std::string(arg1))) {
        case RetryOutcome::requeued: co_return Reply{http::status::ok, id_status_json(arg1, "IN_QUEUE"), {}};
        case RetryOutcome::not_found:
          co_return error_reply(http::status::not_found, "job " + std::string(arg1) + " not found");
        case RetryOutcome::not_retryable:
          co_return error_reply(http::status::bad_request, "only FAILED or TIMED_OUT jobs can be retried");
      }
      break;
    case Op::purge_queue: {
      const std::size_t removed = co_await ask<&JobStore::async_purge_queue>(store);
      co_return Reply{http::status::ok, R"({"removed":)" + std::to_string(removed) + R"(,"status":"completed"})", {}};
    }
    case Op::health: co_return health(co_await ask<&JobStore::async_health>(store));
    case Op::job_take:
    case Op::job_take_batch: {  // job_take() gives the sign of life
      co_return co_await job_take(*ep, *route, stream);
    }
    case Op::job_done: {  // post_result() is the request's sign of life
      WorkerResult result;
      try {
        result = parse_worker_result(req.body());
      } catch (const JsonError& e) {
        co_return error_reply(http::status::bad_request, e.what());
      }
      co_return post_reply(co_await ask<&JobStore::async_post_result>(store, std::string(arg1), std::string(route->arg2),
                                                                      std::move(result)),
                           route->arg2);
    }
    case Op::job_stream: {  // as is post_stream()
      std::string chunk;
      try {
        chunk = parse_stream_chunk(req.body());
      } catch (const JsonError& e) {
        co_return error_reply(http::status::bad_request, e.what());
      }
      co_return post_reply(co_await ask<&JobStore::async_post_stream>(store, std::string(arg1), std::string(route->arg2),
                                                                      std::move(chunk)),
                           route->arg2);
    }
    case Op::ping:
      // A worker whose fitness checks failed says so once and exits: it is not a worker to count
      // as present, nor to hand jobs to.
      if (query_param(route->query, "status") == "unhealthy") {
        http_metrics_->unhealthy_ping();
        log::warn("worker " + std::string(arg1) + " reports unhealthy: " +
                  query_param(route->query, "error").value_or("(no reason given)"));
        co_return Reply{http::status::ok, R"({"status":"ok"})", {}};
      }
      co_await ask<&JobStore::async_ping>(store, std::string(arg1), ping_job_ids(route->query));
      co_return Reply{http::status::ok, R"({"status":"ok"})", {}};
    case Op::job_stop: {
      sign_of_life(store, arg1);
      co_return co_await job_stop(*ep, *route, stream);
    }
    case Op::openai_chat: co_return co_await openai_chat(*ep, req, "/" + std::string(arg1), stream, consumed);
    case Op::openai_models:
      co_return Reply{http::status::ok, openai_models_json(options_.openai_model, model_created_), {}};
    case Op::openai_model: {
      const std::string model = decode_path(arg1);
      if (model != options_.openai_model) {
        co_return error_reply(http::status::not_found,
                              "the model '" + model + "' does not exist; this endpoint serves '" +
                                  options_.openai_model + "'");
      }
      co_return Reply{http::status::ok, openai_model_json(model, model_created_), {}};
    }
    case Op::openapi: co_return Reply{http::status::ok, std::string(openapi_document()), {}};
    case Op::metrics: {
      // Each store's health is asked for as any other operation (a Redis store's never blocks
      // this I/O thread), then the gauges are set from it.
      for (auto& [id, state] : endpoints_) {
        state->metered->collect(co_await ask<&JobStore::async_health>(*state->store));
      }
      // The process's own families too: a worker's and its handler's, under --serve-api.
      Reply reply{http::status::ok, registry_.render() + metrics::process_registry().render(), {}};
      reply.content_type = "text/plain; version=0.0.4; charset=utf-8";
      co_return reply;
    }
    case Op::recent_jobs: co_return co_await recent_jobs(*ep);
    case Op::dashboard:
    case Op::docs: {
      Reply reply{http::status::ok, std::string(route->op == Op::dashboard ? dashboard_html() : docs_html()), {}};
      reply.content_type = "text/html; charset=utf-8";
      co_return reply;
    }
    case Op::asset: {
      const auto asset = static_asset(arg1);
      if (!asset) co_return error_reply(http::status::not_found, "no such file: /static/" + std::string(arg1));
      Reply reply{http::status::ok, std::string(asset->body), {}};
      reply.content_type = asset->content_type;
      co_return reply;
    }
  }
  co_return error_reply(http::status::internal_server_error, "unhandled route");
}

awaitable<Reply> Server::Impl::run(EndpointState& ep, Request& req) {
  NewJob job;
  try {
    parse_submission(req.body(), policy_limits_, job);
  } catch (const JsonError& e) {
    co_return error_reply(http::status::bad_request, e.what());
  }
  job.id = make_uuid();
  std::string body = id_status_json(job.id, "IN_QUEUE");
  const SubmitResult submitted = co_await ask<&JobStore::async_submit>(*ep.store, std::move(job));
  if (!submitted.accepted) co_return queue_full_reply(submitted, options_.max_queued_bytes);
  co_return Reply{http::status::ok, std::move(body), {}};
}

awaitable<Reply> Server::Impl::runsync(EndpointState& ep, Request& req, const Route& route) {
  Millis wait = options_.runsync_wait_default;
  if (auto text = query_param(route.query, "wait")) {
    try {
      std::size_t used = 0;
      const long long ms = std::stoll(*text, &used);
      if (used != text->size()) throw std::invalid_argument("trailing text");
      wait = Millis(ms);
    } catch (const std::exception&) {
      co_return error_reply(http::status::bad_request, "?wait= must be a whole number of milliseconds");
    }
  }
  wait = std::clamp(wait, options_.runsync_wait_min, options_.runsync_wait_max);
  NewJob job;
  try {
    parse_submission(req.body(), policy_limits_, job);
  } catch (const JsonError& e) {
    co_return error_reply(http::status::bad_request, e.what());
  }
  job.id = "sync-" + make_uuid();
  job.sync = true;
  const std::string id = job.id;
  JobStore& store = *ep.store;
  // The submit is the wait's first step: the job's watch is then in place before the job exists,
  // so no change can slip by, and the job is not looked up while it cannot have ended yet.
  std::optional<SubmitResult> submitted;
  std::optional<JobRecord> snap;
  bool looked = false;
  co_await wait_for(store, Topic::job, id, Clock::now() + wait, [&]() -> awaitable<bool> {
    if (!submitted) {
      submitted = co_await ask<&JobStore::async_submit>(store, std::move(job));
      co_return !submitted->accepted;
    }
    looked = true;
    snap = co_await ask<&JobStore::async_status>(store, id);
    co_return !snap || is_terminal(snap->status);
  });
  if (!submitted->accepted) co_return queue_full_reply(*submitted, options_.max_queued_bytes);
  if (!looked) snap = co_await ask<&JobStore::async_status>(store, id);
  if (!snap) co_return error_reply(http::status::not_found, "job " + id + " no longer exists: it was purged from the queue or expired");
  if (is_terminal(snap->status)) co_return Reply{http::status::ok, render_status(*snap), {}};
  co_return Reply{http::status::ok, id_status_json(id, status_name(snap->status)), {}};
}

awaitable<Reply> Server::Impl::stream_json(EndpointState& ep, const Route& route) {
  JobStore& store = *ep.store;
  const std::string id(route.arg1);
  std::optional<StreamBatch> batch;
  co_await wait_for(store, Topic::job, id, Clock::now() + options_.stream_wait, [&]() -> awaitable<bool> {
    batch = co_await ask<&JobStore::async_stream>(store, id);
    co_return !batch || !batch->chunks.empty() || is_terminal(batch->status);
  });
  if (!batch) co_return error_reply(http::status::not_found, "job " + id + " not found");
  std::string body;
  std::size_t size = 40;
  for (const auto& c : batch->chunks) size += c.size() + 12;
  body.reserve(size);
  body += R"({"status":")";
  body += status_name(batch->status);
  body += R"(","stream":[)";
  for (std::size_t i = 0; i < batch->chunks.size(); ++i) {
    if (i != 0) body += ',';
    body += R"({"output":)";
    body += batch->chunks[i];
    body += '}';
  }
  body += "]}";
  co_return Reply{http::status::ok, std::move(body), {}};
}

// Server-Sent Events: each chunk as `data: {"output": chunk}`, then `event: done` with the final
// status object; the connection closes after it (the response has no length).
awaitable<void> Server::Impl::stream_sse(EndpointState& ep, const Route& route, beast::tcp_stream& stream) {
  const HttpMetrics::SseClient client(*http_metrics_);
  JobStore& store = *ep.store;
  const std::string id(route.arg1);
  beast::error_code ec;
  std::string out =
      "HTTP/1.1 200 OK\r\nServer: podworker\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
      "Connection: close\r\nX-Accel-Buffering: no\r\n\r\n";
  std::size_t cursor = 0;
  for (;;) {
    std::optional<StreamBatch> batch;
    if (!stopping_.load()) {
      co_await wait_for(store, Topic::job, id, Clock::now() + options_.sse_keepalive, [&]() -> awaitable<bool> {
        batch = co_await ask<&JobStore::async_read_stream>(store, id, cursor);
        co_return !batch || !batch->chunks.empty() || is_terminal(batch->status);
      });
    }
    if (batch) cursor = batch->next;
    bool done = false;
    if (stopping_.load()) {
      out += "event: error\ndata: {\"error\":\"endpoint shutting down\"}\n\n";
      done = true;
    } else if (!batch) {
      out += "event: error\ndata: {\"error\":\"job no longer exists\"}\n\n";
      done = true;
    } else {
      for (const auto& chunk : batch->chunks) {
        out += "data: {\"output\":";
        out += chunk;
        out += "}\n\n";
      }
      if (is_terminal(batch->status)) {
        auto snap = co_await ask<&JobStore::async_status>(store, id);
        out += "event: done\ndata: ";
        out += snap ? render_status(*snap) : id_status_json(id, status_name(batch->status));
        out += "\n\n";
        done = true;
      } else if (batch->chunks.empty()) {
        out += ": keep-alive\n\n";
      }
    }
    stream.expires_after(options_.idle_timeout);
    co_await asio::async_write(stream, asio::buffer(out), redirect(ec));
    out.clear();
    if (ec || done) break;
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

// OpenAI chat completions: the request becomes a job. Without "stream": true the answer waits like
// /runsync and is the job's output; with it, the handler's chunks (SSE text already) are forwarded
// as they arrive.
awaitable<Reply> Server::Impl::openai_chat(EndpointState& ep, Request& req, std::string openai_route,
                                           beast::tcp_stream& stream, bool& consumed) {
  OpenAiRequest parsed;
  try {
    parsed = parse_openai_request(req.body(), policy_limits_, options_.openai_model, options_.openai_context,
                                  openai_route);
  } catch (const std::invalid_argument& e) {  // a bad value: the reply names the field
    co_return Reply{http::status::bad_request, openai_request_error_json(e), {}};
  } catch (const JsonError& e) {
    co_return Reply{http::status::bad_request, openai_request_error_json(e), {}};
  }
  parsed.job.id = "sync-" + make_uuid();
  parsed.job.sync = true;  // the requester gets the result directly: the short retention applies
  const std::string id = parsed.job.id;
  JobStore& store = *ep.store;
  const SubmitResult submitted = co_await ask<&JobStore::async_submit>(store, std::move(parsed.job));
  if (!submitted.accepted) co_return queue_full_reply(submitted, options_.max_queued_bytes);
  if (parsed.stream) {
    consumed = true;
    co_await openai_stream(ep, id, stream);
    co_return Reply{};
  }
  const Millis wait = options_.runsync_wait_default;
  std::optional<JobRecord> snap;
  co_await wait_for(store, Topic::job, id, Clock::now() + wait, [&]() -> awaitable<bool> {
    snap = co_await ask<&JobStore::async_status>(store, id);
    co_return !snap || is_terminal(snap->status);
  });
  if (!snap) {
    // Purged from the queue (or past its ttl) before it ended: a client's doing, not a server
    // error, and gone as /runsync and /status say.
    co_return Reply{http::status::not_found,
                    openai_error_json("job " + id + " no longer exists: it was purged from the queue or expired", "not_found_error", id),
                    {}};
  }
  if (!is_terminal(snap->status)) {
    co_return Reply{http::status::gateway_timeout,
                    openai_error_json("job " + id + " did not finish within " + std::to_string(wait.count()) +
                                          " ms; it is still " + std::string(status_name(snap->status)) +
                                          " and its result will be at /status/" + id,
                                      "timeout", id),
                    {}};
  }
  std::vector<std::string> chunks;
  if (auto batch = co_await ask<&JobStore::async_read_stream>(store, id, std::size_t{0})) {
    chunks = std::move(batch->chunks);
  }
  OpenAiResponse response = openai_response(id, render_status(*snap), chunks);
  co_return Reply{static_cast<http::status>(response.http_status), std::move(response.body), {}};
}

awaitable<void> Server::Impl::openai_stream(EndpointState& ep, const std::string& id, beast::tcp_stream& stream) {
  const HttpMetrics::SseClient client(*http_metrics_);
  JobStore& store = *ep.store;
  beast::error_code ec;
  std::string out =
      "HTTP/1.1 200 OK\r\nServer: podworker\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
      "Connection: close\r\nX-Accel-Buffering: no\r\n\r\n";
  bool streamed_any = false;
  // A keep-alive comment may only go between events; a handler's chunk could end mid-event.
  bool at_boundary = true;
  bool done = false;
  std::size_t cursor = 0;
  while (!done) {
    std::optional<StreamBatch> batch;
    if (!stopping_.load()) {
      co_await wait_for(store, Topic::job, id, Clock::now() + options_.sse_keepalive, [&]() -> awaitable<bool> {
        batch = co_await ask<&JobStore::async_read_stream>(store, id, cursor);
        co_return !batch || !batch->chunks.empty() || is_terminal(batch->status);
      });
    }
    if (batch) cursor = batch->next;
    if (stopping_.load()) {
      out += "data: " + openai_error_json("endpoint shutting down", "server_error", id) + "\n\n";
      done = true;
    } else if (!batch) {
      out += "data: " + openai_error_json("job " + id + " no longer exists", "server_error", id) + "\n\n";
      done = true;
    } else {
      for (const auto& chunk : batch->chunks) append_sse_chunk(out, chunk);
      if (!batch->chunks.empty()) {
        streamed_any = true;
        at_boundary = out.ends_with("\n\n");
      }
      if (is_terminal(batch->status)) {
        if (auto snap = co_await ask<&JobStore::async_status>(store, id)) {
          out += openai_stream_tail(id, render_status(*snap), streamed_any);
        }
        done = true;
      } else if (batch->chunks.empty() && at_boundary) {
        out += ": keep-alive\n\n";
      }
    }
    stream.expires_after(options_.idle_timeout);
    co_await asio::async_write(stream, asio::buffer(out), redirect(ec));
    out.clear();
    if (ec) {
      // The client is gone and nobody else reads this stream: stop the work instead of finishing it.
      if (!done && !stopping_.load()) {
        log::info("endpoint: OpenAI stream client disconnected; cancelling the job", id);
        co_await ask<&JobStore::async_cancel>(store, id);
      }
      break;
    }
  }
  stream.socket().shutdown(tcp::socket::shutdown_send, ec);
}

awaitable<Reply> Server::Impl::job_take(EndpointState& ep, const Route& route, beast::tcp_stream& stream) {
  JobStore& store = *ep.store;
  std::size_t max_jobs = 1;
  if (route.op == Op::job_take_batch) {
    if (auto text = query_param(route.query, "batch_size")) {
      try {
        max_jobs = static_cast<std::size_t>(std::clamp(std::stoll(*text), 1LL, 1000LL));
      } catch (const std::exception&) {
        max_jobs = 1;  // a worker gets a job rather than an error it would read as "no job"
      }
    }
  }
  const std::string worker(route.arg1);
  // Once per request, before the wait: a worker that holds jobs is told again about stops it may
  // have dropped.
  // The request's sign of life, with the job_in_progress report when there is one. Nothing waits
  // for it: on a pipelined store it still runs before the take.
  if (auto held = query_param(route.query, "job_in_progress")) {
    store.async_report_in_progress(worker, *held == "1" || *held == "true", [](std::exception_ptr, Done) {});
  } else {
    sign_of_life(store, worker);
  }
  std::vector<TakenJob> jobs;
  {
    ClientWatch client(stream.socket());
    co_await wait_for(
        store, Topic::queue, {}, Clock::now() + options_.take_wait,
        [&]() -> awaitable<bool> {
          if (client.gone()) co_return true;
          jobs = co_await ask<&JobStore::async_take>(store, worker, max_jobs);
          co_return !jobs.empty();
        },
        client.slot());
  }
  if (jobs.empty()) co_return Reply{http::status::no_content, {}, {}};
  std::string body;
  if (route.op == Op::job_take) {
    body = render_taken(jobs.front());
  } else {
    body = "[";
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      if (i != 0) body += ',';
      body += render_taken(jobs[i]);
    }
    body += ']';
  }
  Reply reply{http::status::ok, std::move(body), {}};
  reply.undelivered = [&store, worker, jobs = std::move(jobs)] {
    store.async_release(worker, jobs, [](std::exception_ptr error, Done) {
      log_exception(error, "endpoint: giving back an undelivered job-take");
    });
  };
  co_return reply;
}

awaitable<Reply> Server::Impl::job_stop(EndpointState& ep, const Route& route, beast::tcp_stream& stream) {
  JobStore& store = *ep.store;
  const std::string worker(route.arg1);
  std::vector<std::string> ids;
  {
    ClientWatch client(stream.socket());
    co_await wait_for(
        store, Topic::stop, worker, Clock::now() + options_.stop_wait,
        [&]() -> awaitable<bool> {
          if (client.gone()) co_return true;
          ids = co_await ask<&JobStore::async_take_stop_requests>(store, worker);
          co_return !ids.empty();
        },
        client.slot());
  }
  if (ids.empty()) co_return Reply{http::status::no_content, {}, {}};
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("jobsToStop");
  w.StartArray();
  for (const auto& id : ids) write_string(w, id);
  w.EndArray();
  w.EndObject();
  co_return Reply{http::status::ok, std::string(buffer.GetString(), buffer.GetSize()), {}};
}

Reply Server::Impl::health(const HealthCounts& h) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("jobs");
  w.StartObject();
  w.Key("completed");
  w.Uint64(h.completed);
  w.Key("failed");
  w.Uint64(h.failed);
  w.Key("inProgress");
  w.Uint64(h.in_progress);
  w.Key("inQueue");
  w.Uint64(h.in_queue);
  w.Key("retried");
  w.Uint64(h.retried);
  w.EndObject();
  w.Key("workers");
  w.StartObject();
  w.Key("idle");
  w.Uint64(h.workers_idle);
  w.Key("running");
  w.Uint64(h.workers_running);
  w.EndObject();
  w.EndObject();
  return Reply{http::status::ok, std::string(buffer.GetString(), buffer.GetSize()), {}};
}

// The dashboard's table: the last jobs submitted here, newest first, with their times (no output:
// the page fetches /status for the one it shows).
awaitable<Reply> Server::Impl::recent_jobs(EndpointState& ep) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("jobs");
  w.StartArray();
  for (const std::string& id : ep.metered->recent_jobs()) {
    const std::optional<JobRecord> job = co_await ask<&JobStore::async_status>(*ep.store, id);
    if (!job) continue;  // expired or purged
    w.StartObject();
    w.Key("id");
    write_string(w, job->id);
    w.Key("status");
    write_string(w, status_name(job->status));
    if (job->delay_ms) {
      w.Key("delayTime");
      w.Int64(*job->delay_ms);
    }
    if (job->execution_ms) {
      w.Key("executionTime");
      w.Int64(*job->execution_ms);
    }
    if (!job->worker.empty()) {
      w.Key("workerId");
      write_string(w, job->worker);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  co_return Reply{http::status::ok, std::string(buffer.GetString(), buffer.GetSize()), {}};
}

// ---- Server

Server::Server(Options options) : impl_(std::make_unique<Impl>(std::move(options))) {}
Server::~Server() = default;
std::uint16_t Server::start() { return impl_->start(); }
void Server::stop() { impl_->stop(); }
std::string Server::serve_bytes(std::string_view requests) {
  return impl_->serve_bytes(requests);
}
std::uint16_t Server::port() const { return impl_->port_; }
std::string Server::url() const { return http_url(impl_->options_.host, impl_->port_); }
const Options& Server::options() const { return impl_->options_; }

}  // namespace podworker::endpoint

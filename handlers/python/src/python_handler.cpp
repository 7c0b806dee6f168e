// The `python` handler: forwards each job to the bridge process and maps its frames onto the
// handler API (stream chunks to the Emitter, progress, result, error, refresh), so streams go
// through the worker's own splitting and sender, and cancels, timeouts and heartbeats stay native.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <mutex>

#include "bridge_session.h"
#include "podworker/handlers/python.h"

namespace podworker::handlers {
namespace {

using python::BridgeCommand;
using python::BridgeSession;
using python::JobChannel;
namespace fs = std::filesystem;

constexpr const char* kBridgeScript = "podworker_bridge.py";
constexpr std::chrono::milliseconds kConcurrencyAskInterval{100};

// Where podworker_bridge.py and its runpod package are: the bridge_dir setting, else beside the
// installed executable (<prefix>/bin/worker → <prefix>/share/podworker/python), else the source
// tree this binary was built from (a build that was never installed, as in the tests).
fs::path find_bridge_dir(const std::string& configured) {
  if (!configured.empty()) {
    if (fs::exists(fs::path(configured) / kBridgeScript)) return configured;
    throw std::invalid_argument("bridge_dir " + configured + " holds no " + kBridgeScript);
  }
  std::vector<fs::path> candidates;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back(exe.parent_path().parent_path() / "share" / "podworker" / "python");
#ifdef PODWORKER_PYTHON_SOURCE_DIR
  candidates.emplace_back(PODWORKER_PYTHON_SOURCE_DIR);
#endif
  std::string looked;
  for (const auto& dir : candidates) {
    if (fs::exists(dir / kBridgeScript)) return dir;
    looked += (looked.empty() ? "" : ", ") + dir.string();
  }
  throw std::invalid_argument(std::string("cannot find ") + kBridgeScript + " (looked in " +
                              looked + "); set PODWORKER_PYTHON_BRIDGE_DIR");
}

// The user's interpreter: --python-exe, else the active virtual environment's, else python3 on
// PATH.
std::string find_python(const std::string& configured) {
  if (!configured.empty()) return configured;
  if (const char* venv = std::getenv("VIRTUAL_ENV"); venv != nullptr && *venv != '\0') {
    const fs::path p = fs::path(venv) / "bin" / "python";
    if (::access(p.c_str(), X_OK) == 0) return p.string();
  }
  return "python3";
}

json::Document frame(std::string_view op, std::uint64_t seq) {
  json::Document f;
  f.SetObject();
  f.AddMember("op", json::string_value(op, f.GetAllocator()), f.GetAllocator());
  f.AddMember("seq", seq, f.GetAllocator());
  return f;
}

class PythonHandler final : public Handler {
 public:
  std::vector<Setting> settings() const override {
    return {
        {.name = "script",
         .help = "the runpod-python handler file to run (worker --python FILE)",
         .env_aliases = {"PODWORKER_PYTHON_HANDLER"}},
        {.name = "python_exe",
         .help = "the Python interpreter (worker --python-exe PATH); default: $VIRTUAL_ENV's, "
                 "else python3 on PATH"},
        {.name = "bridge_dir",
         .help = "the folder holding podworker_bridge.py and its runpod package; default: "
                 "share/podworker/python beside the executable"},
        {.name = "start_timeout_s",
         .type = SettingType::integer,
         .default_value = "600",
         .help = "how long handler.py may take to reach runpod.serverless.start()",
         .min = 1,
         .max = 86400},
        {.name = "cancel_grace_ms",
         .type = SettingType::integer,
         .default_value = "10000",
         .help = "after a cancel, how long a job's slot waits for the handler to return "
                 "(a sync handler must check runpod.serverless.is_cancelled(job))",
         .min = 0,
         .max = 86400000},
    };
  }

  void init(const HandlerContext& context) override {
    log_ = context.log;
    const std::string script = context.settings.get_string("script");
    if (script.empty()) {
      throw std::invalid_argument("no handler file: run worker --python path/to/handler.py");
    }
    if (!fs::is_regular_file(script)) throw std::invalid_argument("no handler file " + script);
    command_.handler_file = fs::absolute(script).string();
    command_.python_exe = find_python(context.settings.get_string("python_exe"));
    command_.bridge_script =
        (find_bridge_dir(context.settings.get_string("bridge_dir")) / kBridgeScript).string();
    start_timeout_ = std::chrono::seconds(context.settings.get_int("start_timeout_s"));
    cancel_grace_ = std::chrono::milliseconds(context.settings.get_int("cancel_grace_ms"));
    // A start that fails (import error, refused config key) stops the worker here, with the
    // bridge's message.
    auto session = std::make_shared<BridgeSession>(command_, start_timeout_);
    const auto& c = session->config();
    config_ = c;
    streams_ = c.kind == "generator" || c.kind == "async_generator";
    log_.info(command_.handler_file + ": handler kind " + c.kind + ", Python " + c.python_version +
              " (" + command_.python_exe + "), bridge " + command_.bridge_script +
              (c.concurrency_modifier ? ", concurrency_modifier" : "") +
              (c.return_aggregate_stream ? ", return_aggregate_stream" : "") +
              (c.refresh_worker ? ", refresh_worker" : ""));
    std::lock_guard lock(mu_);
    session_ = std::move(session);
  }

  void finalize() override {
    std::lock_guard lock(mu_);
    session_.reset();
  }

  bool streams() const override { return streams_.load(); }

  // concurrency_modifier(current), asked at most every kConcurrencyAskInterval: the worker
  // consults this before every take, and a round trip to the interpreter per job would cost
  // more than the job itself for a fast handler. A modifier reading load changes slower.
  int concurrency(int configured) override {
    if (!config_.concurrency_modifier) return configured;
    if (!current_) current_ = configured;
    const auto now = std::chrono::steady_clock::now();
    if (asked_ && now - *asked_ < kConcurrencyAskInterval) return *current_;
    asked_ = now;
    std::shared_ptr<BridgeSession> s;
    {
      std::lock_guard lock(mu_);
      s = session_;
    }
    if (s && s->alive()) {
      if (auto v = s->ask_concurrency(*current_, std::chrono::milliseconds(5000))) {
        current_ = std::max(1, *v);
      }
    }
    return *current_;
  }

  Output execute(Job& job, Emitter& out) override {
    std::shared_ptr<BridgeSession> s;
    try {
      s = session();
    } catch (const std::exception& e) {
      return Output::error(std::string("the Python handler could not be restarted: ") + e.what());
    }
    const std::uint64_t seq = next_seq_.fetch_add(1);
    auto channel = s->open(seq);
    struct Forget {
      BridgeSession& s;
      std::uint64_t seq;
      ~Forget() { s.forget(seq); }
    } forget{*s, seq};

    json::Document start = frame("job", seq);
    start.AddMember("job", json::clone(job.raw(), start.GetAllocator()), start.GetAllocator());
    s->send(start);  // a bridge already gone closes the channel: the loop below says why

    json::Document aggregate(rapidjson::kArrayType);
    bool cancel_sent = false;
    std::optional<std::chrono::steady_clock::time_point> give_up;
    for (;;) {
      JobChannel::Frame f;
      const auto wait =
          channel->next(f, cancel_sent ? std::stop_token() : job.stop_token(), give_up);
      if (wait == JobChannel::Wait::stopped) {
        s->send(frame("cancel", seq));
        cancel_sent = true;
        give_up = std::chrono::steady_clock::now() + cancel_grace_;
        continue;
      }
      if (wait == JobChannel::Wait::timed_out) {
        log_.warn("the handler did not return within " + std::to_string(cancel_grace_.count()) +
                      " ms of its cancel; the slot is freed, its result will be dropped",
                  job.id());
        return Output{};
      }
      if (wait == JobChannel::Wait::closed) return Output::error(channel->closed_reason());
      const std::string op = json::get_string(f.doc, "op");
      if (op == "stream") {
        const json::Value* chunk = json::find(f.doc, "chunk");
        if (chunk == nullptr) continue;
        try {
          out.yield(*chunk);
        } catch (...) {
          // The stream cannot be delivered: stop the generator, then let the runtime report it.
          s->send(frame("cancel", seq));
          throw;
        }
        if (config_.return_aggregate_stream) {
          aggregate.PushBack(json::clone(*chunk, aggregate.GetAllocator()),
                             aggregate.GetAllocator());
        }
        json::Document ack = frame("ack", seq);
        ack.AddMember("bytes", static_cast<std::uint64_t>(f.bytes), ack.GetAllocator());
        s->send(ack);
      } else if (op == "progress") {
        if (const json::Value* v = json::find(f.doc, "value")) job.progress(*v);
      } else if (op == "result" || op == "error") {
        if (config_.refresh_worker || json::get_bool(f.doc, "refresh", false))
          job.request_refresh();
        if (op == "error") {
          const json::Value* extra = json::find(f.doc, "output");
          return Output::error(json::get_string(f.doc, "error"),
                               extra ? json::copy(*extra) : json::Document());
        }
        if (json::get_bool(f.doc, "stream", false)) {
          return config_.return_aggregate_stream ? Output::ok(std::move(aggregate)) : Output{};
        }
        const json::Value* value = json::find(f.doc, "output");
        return Output::ok(value ? json::copy(*value) : json::Document());
      } else if (op == "cancelled") {
        return Output{};
      }
    }
  }

 private:
  // The running bridge; a new one when the last has died (a crash fails only the jobs it ran).
  std::shared_ptr<BridgeSession> session() {
    std::lock_guard lock(mu_);
    if (!session_ || !session_->alive()) {
      if (session_) log_.warn("starting a new Python handler process");
      session_.reset();
      session_ = std::make_shared<BridgeSession>(command_, start_timeout_);
    }
    return session_;
  }

  Logger log_;
  BridgeCommand command_;
  std::chrono::milliseconds start_timeout_{600000};
  std::chrono::milliseconds cancel_grace_{10000};
  python::BridgeConfig config_;
  std::atomic<bool> streams_{false};
  std::atomic<std::uint64_t> next_seq_{1};
  // concurrency_modifier's last answer and when it was asked (the taking thread only).
  std::optional<int> current_;
  std::optional<std::chrono::steady_clock::time_point> asked_;
  std::mutex mu_;
  std::shared_ptr<BridgeSession> session_;
};

}  // namespace

void register_python(HandlerRegistry& registry) {
  registry.add<PythonHandler>("python");
}

}  // namespace podworker::handlers

// The worker executable's logic: flags and environment → local test run, embedded endpoint, or
// the job loop against RUNPOD_WEBHOOK_* URLs. SIGTERM/SIGINT stop taking jobs and drain.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include "fitness_checks.h"
#include "metrics_listener.h"
#include "podworker/ids.h"
#include "podworker/log.h"
#include "podworker/worker.h"
#include "serve_api.h"

namespace podworker {
namespace {

constexpr const char* kUsage = R"(usage: worker [flags]
  --handler NAME            handler to run (PODWORKER_HANDLER; default: the binary's default
                            handler, or the only one registered)
  --python FILE             run a runpod-python handler file unchanged (the `python` handler;
                            docs/handlers.md, "Bring your runpod-python handler")
  --python-exe PATH         its interpreter (default: $VIRTUAL_ENV's, else python3 on PATH)
  --set NAME=VALUE          a setting of the handler (repeatable; listed below)
  --config FILE             the handler's settings as a JSON object (PODWORKER_CONFIG)
  --concurrency N           jobs at once (PODWORKER_CONCURRENCY; default: the handler's capacity)
  --job-timeout-ms MS       fail a job running longer (PODWORKER_JOB_TIMEOUT_MS; a job's own
                            policy.executionTimeout wins; default: none)
  --test-input JSON         run one job {"input": {...}} locally, print the result, exit 0/1
                            (without flags and RUNPOD_WEBHOOK_GET_JOB: ./test_input.json)
  --serve-api               serve the job API in this process and take jobs from it
  --api-host H --api-port P address for --serve-api (default 127.0.0.1:8000; 0 = any free port)
  --store STORE             job store of --serve-api: memory (default) or redis://HOST:PORT[/DB]
  --metrics-port P          serve Prometheus /metrics on P (off by default; 0 = any free port)
  --metrics-host H          address for --metrics-port (default 127.0.0.1; 0.0.0.0 for a scraper)
  -- ENDPOINT-FLAGS         after --: flags for the embedded endpoint (see `endpoint --help`)
  --log-level LEVEL         ERROR, WARN, INFO, DEBUG, TRACE (RUNPOD_LOG_LEVEL)
  --return-aggregate-stream a stream's final result holds all its chunks
                            (PODWORKER_RETURN_AGGREGATE_STREAM=1)
  --stream-buffer-bytes N   a stream's undelivered chunks before yield() waits (default 4 MiB)
  --shutdown-grace-ms MS    on SIGTERM, how long running jobs may finish (default 30000)
The SDK's spellings (--test_input, --rp_serve_api, --rp_api_port, ...) are accepted too.
Environment: RUNPOD_WEBHOOK_GET_JOB, RUNPOD_WEBHOOK_POST_OUTPUT, RUNPOD_WEBHOOK_POST_STREAM,
RUNPOD_WEBHOOK_PING, RUNPOD_PING_INTERVAL, RUNPOD_AI_API_KEY, RUNPOD_POD_ID, RUNPOD_POD_HOSTNAME,
RUNPOD_ENDPOINT_ID (JSON logs), RUNPOD_LOG_LEVEL. Timings, in ms: PODWORKER_CONNECT_TIMEOUT_MS
(10000), PODWORKER_REQUEST_TIMEOUT_MS (30000), PODWORKER_LONG_POLL_TIMEOUT_MS (90000),
PODWORKER_BACKOFF_INITIAL_MS (200), PODWORKER_BACKOFF_MAX_MS (10000),
PODWORKER_RATE_LIMITED_BACKOFF_MS (5000), PODWORKER_MIN_POLL_INTERVAL_MS (100),
PODWORKER_SHUTDOWN_GRACE_MS (30000); PODWORKER_POST_ATTEMPTS (5), PODWORKER_STREAM_BUFFER_BYTES.
Fitness checks at start: RUNPOD_MIN_MEMORY_GB (4), RUNPOD_MIN_DISK_PERCENT (10),
RUNPOD_MIN_CUDA_VERSION (11.8), RUNPOD_SKIP_GPU_CHECK, RUNPOD_SKIP_AUTO_SYSTEM_CHECKS.
)";

// Each registered handler's settings, for --help. Settings are declared before init(), so a
// handler instance that was never initialized can say them.
std::string settings_help(const HandlerRegistry& registry) {
  std::string out =
      "Handler settings: --set NAME=VALUE, then PODWORKER_<HANDLER>_<NAME>, then --config FILE, "
      "then the default.\n";
  for (const auto& name : registry.names()) {
    const auto declared = registry.create(name)->settings();
    out += "  " + name + (declared.empty() ? ": none\n" : ":\n");
    for (const auto& d : declared) {
      out += "    " + d.name + " (" + std::string(setting_type_name(d.type)) + ", default \"" +
             d.default_value + "\"; " + setting_env_name(name, d.name);
      for (const auto& alias : d.env_aliases) out += ", " + alias;
      out += ")\n        " + d.help + "\n";
    }
  }
  return out;
}

// Self-pipe: the signal handler only writes a byte; a normal thread reads it and stops the worker.
int g_signal_pipe[2] = {-1, -1};

extern "C" void on_signal(int) {
  const int saved = errno;
  const char byte = 's';
  [[maybe_unused]] auto n = ::write(g_signal_pipe[1], &byte, 1);
  errno = saved;
}

class SignalWatcher {
 public:
  template <typename OnSignal>
  explicit SignalWatcher(OnSignal on) {
    if (::pipe2(g_signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0) throw std::runtime_error("pipe2 failed");
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    thread_ = std::jthread([this, on](std::stop_token st) {
      while (!st.stop_requested()) {
        pollfd p{g_signal_pipe[0], POLLIN, 0};
        if (::poll(&p, 1, -1) < 0 && errno != EINTR) return;
        char buf[16];
        const auto n = ::read(g_signal_pipe[0], buf, sizeof buf);
        if (n > 0 && !quit_) on();
      }
    });
  }
  ~SignalWatcher() {
    quit_ = true;
    thread_.request_stop();
    on_signal(0);  // wakes the watcher's poll()
    thread_.join();
    struct sigaction sa {};
    sa.sa_handler = SIG_DFL;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    ::close(g_signal_pipe[0]);
    ::close(g_signal_pipe[1]);
  }
  SignalWatcher(const SignalWatcher&) = delete;
  SignalWatcher& operator=(const SignalWatcher&) = delete;

 private:
  std::atomic<bool> quit_{false};
  std::jthread thread_;
};

std::optional<std::string> read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

int run_test_input(Handler& handler, const WorkerOptions& options, const HandlerContext& context,
                   const std::string& text) {
  json::Document job;
  try {
    job = json::parse_object(text, 64u << 20);
  } catch (const JsonError& e) {
    std::fprintf(stderr, "worker: bad test input: %s\n", e.what());
    return 1;
  }
  handler.init(context);
  LocalResult result = run_local_job(handler, job, options);
  handler.finalize();
  const std::string out = json::to_string(result.body);
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  return result.ok ? 0 : 1;
}

}  // namespace

std::string select_handler(const std::string& requested, const std::string& default_handler,
                           const HandlerRegistry& registry) {
  std::string names;
  for (const auto& n : registry.names()) names += (names.empty() ? "" : ", ") + n;
  if (names.empty()) names = "none";
  if (!requested.empty()) {
    if (registry.contains(requested)) return requested;
    throw std::invalid_argument("unknown handler \"" + requested + "\"; registered: " + names);
  }
  if (!default_handler.empty()) {
    if (registry.contains(default_handler)) return default_handler;
    throw std::invalid_argument("the default handler \"" + default_handler +
                                "\" is not registered; registered: " + names);
  }
  if (registry.names().size() == 1) return registry.names().front();
  throw std::invalid_argument(
      "no handler chosen and " + std::to_string(registry.names().size()) + " are registered (" +
      names + "): pass --handler NAME or PODWORKER_HANDLER, or name a default in worker_main");
}

int worker_main(int argc, char** argv, HandlerRegistry& registry) {
  return worker_main(argc, argv, WorkerMainOptions{"", &registry});
}

int worker_main(int argc, char** argv, const WorkerMainOptions& main_options) {
  HandlerRegistry& registry =
      main_options.registry != nullptr ? *main_options.registry : HandlerRegistry::global();
  log::configure_from_env();
  WorkerOptions options;
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  for (const auto& a : args) {
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      std::fputs(settings_help(registry).c_str(), stdout);
      return 0;
    }
  }
  try {
    options = options_from_env();
    apply_flags(options, args);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "worker: %s\n%s", e.what(), kUsage);
    return 2;
  }
  std::unique_ptr<Handler> handler;
  HandlerContext context;
  try {
    options.handler = select_handler(options.handler, main_options.default_handler, registry);
    if (options.worker_id.empty()) options.worker_id = make_uuid();
    handler = registry.create(options.handler);
    // Settings are checked before anything runs: a bad value stops the worker at start.
    context = make_handler_context(options, *handler);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "worker: %s\n", e.what());
    return 2;
  }

  try {
    if (!options.test_input && options.take_url.empty() && !options.serve_api) {
      if (auto text = read_file("test_input.json")) options.test_input = std::move(text);
    }
    if (options.test_input) return run_test_input(*handler, options, context, *options.test_input);
    if (options.take_url.empty() && !options.serve_api) {
      std::fprintf(stderr,
                   "worker: RUNPOD_WEBHOOK_GET_JOB is not set, so there is no queue to take jobs "
                   "from; use --test-input JSON, ./test_input.json or --serve-api\n");
      return 2;
    }
    // As the SDK: before the first job, and not for a local test run.
    const auto fitness_config = worker::FitnessConfig::from_env();
    if (auto unfit = worker::run_fitness_checks(fitness_config, fitness::registry())) {
      return worker::report_unfit(options, *unfit);
    }

    std::unique_ptr<worker::MetricsListener> metrics;
    if (options.metrics_port >= 0) {
      metrics = std::make_unique<worker::MetricsListener>(options.metrics_host, options.metrics_port);
      std::printf("podworker worker metrics on %s/metrics\n", metrics->url().c_str());
      std::fflush(stdout);
    }
    // init() runs before the API listens, so the endpoint knows the model's context and refuses
    // a max_tokens beyond it as a 400 instead of queueing a job bound to fail.
    handler->init(context);
    options.handler_initialized = true;
    std::unique_ptr<worker::EmbeddedApi> api;
    if (options.serve_api) api = worker::start_embedded_api(options, handler->chat_limits());
    if (options.take_url.empty()) {
      std::fprintf(stderr, "worker: the embedded endpoint gave no job-take URL\n");
      return 2;
    }
    Worker worker(options, *handler);
    SignalWatcher signals([&worker] {
      log::info("signal received: finishing running jobs, taking no more");
      worker.stop();
    });
    worker.run();
    return 0;
  } catch (const std::exception& e) {
    log::error(std::string("worker failed: ") + e.what());
    return 1;
  }
}

}  // namespace podworker

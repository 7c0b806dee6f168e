// The `endpoint` command line, shared with `worker --serve-api`.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <pthread.h>

#include "podworker/endpoint/server.h"
#include "podworker/log.h"
#include "store_factory.h"

namespace podworker::endpoint {

namespace {

struct MillisFlag {
  std::string_view name;
  Millis Options::*field;
  std::string_view help;
};

constexpr MillisFlag kMillisFlags[] = {
    {"--rate-window-ms", &Options::rate_window, "rate-limit window (10000)"},
    {"--runsync-wait-ms", &Options::runsync_wait_default, "/runsync wait without ?wait= (90000)"},
    {"--runsync-wait-min-ms", &Options::runsync_wait_min, "lowest accepted ?wait= (1000)"},
    {"--runsync-wait-max-ms", &Options::runsync_wait_max, "highest accepted ?wait= (300000)"},
    {"--take-wait-ms", &Options::take_wait, "job-take long poll before 204 (20000)"},
    {"--stop-wait-ms", &Options::stop_wait, "job-stop long poll before 204 (20000)"},
    {"--stream-wait-ms", &Options::stream_wait, "/stream wait for a new chunk (1000)"},
    {"--sse-keepalive-ms", &Options::sse_keepalive, "idle SSE comment interval (15000)"},
    {"--retention-ms", &Options::retention, "keep /run results after the end (1800000)"},
    {"--runsync-retention-ms", &Options::runsync_retention, "keep /runsync results after the end (60000)"},
    {"--execution-timeout-ms", &Options::execution_timeout_default, "default policy.executionTimeout (600000)"},
    {"--min-execution-timeout-ms", &Options::execution_timeout_min, "lowest policy.executionTimeout (5000)"},
    {"--ttl-ms", &Options::ttl_default, "default policy.ttl (86400000)"},
    {"--min-ttl-ms", &Options::ttl_min, "lowest policy.ttl (10000)"},
    {"--heartbeat-grace-ms", &Options::heartbeat_grace, "silence before a worker's jobs are requeued (60000)"},
    {"--sweep-ms", &Options::sweep_interval, "timeout/TTL/retention/heartbeat check period (1000)"},
    {"--webhook-retry-delay-ms", &Options::webhook_retry_delay, "pause between webhook attempts (10000)"},
    {"--webhook-timeout-ms", &Options::webhook_timeout, "one webhook attempt (10000)"},
    {"--idle-timeout-ms", &Options::idle_timeout, "idle keep-alive connection lifetime (120000)"},
    {"--shutdown-timeout-ms", &Options::shutdown_timeout, "wait for in-flight requests at stop (5000)"},
};

bool parse_number(std::string_view text, long long lo, long long hi, long long& out) {
  if (text.empty()) return false;
  try {
    std::size_t used = 0;
    const long long v = std::stoll(std::string(text), &used);
    if (used != text.size() || v < lo || v > hi) return false;
    out = v;
    return true;
  } catch (const std::exception&) {
    return false;
  }
}

RateLimit* rate_limit_for(Options& o, std::string_view route) {
  if (route == "run") return &o.limits.run;
  if (route == "runsync") return &o.limits.runsync;
  if (route == "status") return &o.limits.status;
  if (route == "stream") return &o.limits.stream;
  if (route == "cancel") return &o.limits.cancel;
  if (route == "purge-queue") return &o.limits.purge_queue;
  if (route == "openai") return &o.limits.openai;
  return nullptr;
}

}  // namespace

CliResult parse_cli(const std::vector<std::string>& args, Options& o) {
  CliResult result;
  bool endpoint_ids_given = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_value = false;
    if (const auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
      has_value = true;
    }
    auto need_value = [&]() -> bool {
      if (has_value) return true;
      if (i + 1 >= args.size()) {
        result.error = flag + " needs a value";
        return false;
      }
      value = args[++i];
      return true;
    };
    auto bad_value = [&] {
      result.error = "bad value '" + value + "' for " + flag;
      return result;
    };
    long long n = 0;
    if (flag == "-h" || flag == "--help") {
      result.help = true;
    } else if (flag == "--host") {
      if (!need_value()) return result;
      o.host = value;
    } else if (flag == "--port") {
      if (!need_value()) return result;
      if (!parse_number(value, 0, 65535, n)) return bad_value();
      o.port = static_cast<std::uint16_t>(n);
    } else if (flag == "--endpoint-id") {
      if (!need_value()) return result;
      if (value.empty() || value.find('/') != std::string::npos) return bad_value();
      if (!endpoint_ids_given) o.endpoint_ids.clear();
      endpoint_ids_given = true;
      o.endpoint_ids.push_back(value);
    } else if (flag == "--api-key") {
      if (!need_value()) return result;
      o.api_key = value;
    } else if (flag == "--openai-model") {
      if (!need_value()) return result;
      if (value.empty()) return bad_value();
      o.openai_model = value;
    } else if (flag == "--openai-context") {
      if (!need_value()) return result;
      if (!parse_number(value, 0, 1 << 24, n)) return bad_value();
      o.openai_context = static_cast<int>(n);
    } else if (flag == "--store") {
      if (!need_value()) return result;
      if (std::string e = check_store_spec(value); !e.empty()) {
        result.error = e;
        return result;
      }
      o.store = value;
    } else if (flag == "--webhook-ca-file") {
      if (!need_value()) return result;
      if (value.empty()) return bad_value();
      o.webhook_ca_file = value;
    } else if (flag == "--io-threads") {
      if (!need_value()) return result;
      if (!parse_number(value, 1, 64, n)) return bad_value();
      o.io_threads = static_cast<unsigned>(n);
    } else if (flag == "--no-rate-limit") {
      o.rate_limit = false;
    } else if (flag == "--rate-limit") {
      // ROUTE=REQUESTS/CONCURRENT, 0 = unlimited; e.g. run=1000/200
      if (!need_value()) return result;
      const auto eq = value.find('=');
      const auto slash = value.find('/', eq == std::string::npos ? 0 : eq);
      RateLimit* rl = eq == std::string::npos ? nullptr : rate_limit_for(o, std::string_view(value).substr(0, eq));
      long long req = 0, conc = 0;
      if (rl == nullptr ||
          !parse_number(std::string_view(value).substr(eq + 1, slash == std::string::npos ? std::string::npos : slash - eq - 1),
                        0, 1'000'000'000, req) ||
          (slash != std::string::npos && !parse_number(std::string_view(value).substr(slash + 1), 0, 1'000'000'000, conc))) {
        return bad_value();
      }
      rl->requests = static_cast<std::uint32_t>(req);
      rl->concurrent = static_cast<std::uint32_t>(conc);
    } else if (flag == "--retry-limit") {
      if (!need_value()) return result;
      if (!parse_number(value, 0, 1000, n)) return bad_value();
      o.retry_limit = static_cast<int>(n);
    } else if (flag == "--webhook-retries") {
      if (!need_value()) return result;
      if (!parse_number(value, 0, 100, n)) return bad_value();
      o.webhook_retries = static_cast<int>(n);
    } else if (flag == "--max-run-body" || flag == "--max-runsync-body") {
      if (!need_value()) return result;
      if (!parse_number(value, 1, 1LL << 34, n)) return bad_value();
      (flag == "--max-run-body" ? o.max_run_body : o.max_runsync_body) = static_cast<std::size_t>(n);
    } else if (flag == "--max-queued-bytes") {
      if (!need_value()) return result;
      if (!parse_number(value, 0, 1LL << 50, n)) return bad_value();
      o.max_queued_bytes = static_cast<std::size_t>(n);
    } else if (flag == "--log-level") {
      if (!need_value()) return result;
      log::set_level(log::parse_level(value));
    } else {
      bool found = false;
      for (const MillisFlag& f : kMillisFlags) {
        if (flag != f.name) continue;
        if (!need_value()) return result;
        if (!parse_number(value, 0, 1LL << 40, n)) return bad_value();
        o.*(f.field) = Millis(n);
        found = true;
        break;
      }
      if (!found) {
        result.error = "unknown flag " + flag;
        return result;
      }
    }
  }
  return result;
}

std::string cli_help(const std::string& program) {
  std::string h = "usage: " + program + " [flags]\n\n"
      "Serves RunPod's job API (/v2/{endpoint_id}/run, runsync, status, stream, cancel, retry,\n"
      "purge-queue, health; the same routes without /v2/{endpoint_id} for the first endpoint id),\n"
      "OpenAI-compatible routes (POST openai/v1/chat/completions and openai/v1/completions run as\n"
      "jobs, GET openai/v1/models and openai/v1/models/{model})\n"
      "and the worker API (job-take, job-take-batch, job-done, job-stream, ping, job-stop).\n"
      "GET /openapi.json describes the client and OpenAI routes (OpenAPI 3).\n"
      "Prints \"podworker endpoint listening on http://HOST:PORT\" once it accepts connections;\n"
      "stops gracefully on SIGINT or SIGTERM.\n\n"
      "  --host HOST               listen address (127.0.0.1)\n"
      "  --port PORT               listen port, 0 = any free port (8000)\n"
      "  --endpoint-id ID          endpoint id to serve; repeat for several; the first is the default (local)\n"
      "  --api-key KEY             require this key (Bearer or bare) on every route; also from\n"
      "                            PODWORKER_API_KEY; without a key authentication is off\n"
      "  --openai-model NAME       model id listed by openai/v1/models and put in requests that name\n"
      "                            none (podworker)\n"
      "  --openai-context TOKENS   the served model's context: chat requests whose max_tokens exceed\n"
      "                            it are refused (400) before a job exists; 0 = not known (0; worker\n"
      "                            --serve-api sets it from the handler)\n"
      "  --store STORE             job store: memory, or redis://HOST:PORT[/DB] to share one Redis\n"
      "                            between endpoint replicas (memory)\n"
      "  --webhook-ca-file PATH    CA bundle that https webhook receivers are checked against\n"
      "                            (the system's)\n"
      "  --io-threads N            I/O threads (2)\n"
      "  --no-rate-limit           turn rate limits off (benchmarks)\n"
      "  --rate-limit ROUTE=R/C    R requests per window, C concurrent (0 = unlimited) for ROUTE:\n"
      "                            run (1000/200), runsync (2000/400), status (2000/400),\n"
      "                            stream (2000/400), cancel (100/20), purge-queue (2/0),\n"
      "                            openai (2000/400)\n"
      "  --retry-limit N           requeues after heartbeat loss before FAILED (3)\n"
      "  --webhook-retries N       webhook attempts after the first (2)\n"
      "  --max-run-body BYTES      /run body limit (10485760)\n"
      "  --max-runsync-body BYTES  /runsync body limit (20971520)\n"
      "  --max-queued-bytes BYTES  payload bytes queued jobs may hold; beyond it /run, /runsync and\n"
      "                            chat completions answer 429 (1073741824; 0 = no cap)\n"
      "  --log-level LEVEL         ERROR, WARN, INFO, DEBUG, TRACE (RUNPOD_LOG_LEVEL; INFO)\n";
  for (const MillisFlag& f : kMillisFlags) {
    std::string line = "  " + std::string(f.name) + " MS";
    line.resize(std::max<std::size_t>(line.size() + 1, 28), ' ');
    h += line + std::string(f.help) + "\n";
  }
  h += "  -h, --help                this text\n\n"
       "environment:\n"
       "  PODWORKER_API_KEY         the API key when --api-key is not given (keeps it out of the\n"
       "                            process list); unset and no flag: authentication is off\n"
       "  RUNPOD_LOG_LEVEL          default log level (--log-level overrides it)\n"
       "  RUNPOD_ENDPOINT_ID        when set, log lines are JSON\n";
  return h;
}

int endpoint_main(int argc, char** argv) {
  log::configure_from_env();
  Options options;
  if (const char* key = std::getenv("PODWORKER_API_KEY"); key != nullptr) options.api_key = key;
  const std::string program = argc > 0 ? argv[0] : "endpoint";
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  const CliResult cli = parse_cli(args, options);
  if (!cli.error.empty()) {
    std::cerr << program << ": " << cli.error << "\n(run " << program << " --help for the flags)\n";
    return 2;
  }
  if (cli.help) {
    std::cout << cli_help(program);
    return 0;
  }
  // Block the stop signals before any thread starts, so every thread inherits the mask and only
  // sigwait() below receives them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::optional<Server> server;
  try {
    server.emplace(options);  // opens the store: a Redis that cannot be reached ends here
    server->start();
  } catch (const std::exception& e) {
    std::cerr << program << ": " << e.what() << "\n";
    return 1;
  }
  std::string ids;
  for (const auto& id : options.endpoint_ids) ids += (ids.empty() ? "" : ", ") + id;
  log::info("endpoint: serving endpoint id(s) " + ids + " (default " + options.endpoint_ids.front() + ")");
  const std::string line = "podworker endpoint listening on " + server->url() + "\n";
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fflush(stdout);

  int signal_number = 0;
  sigwait(&signals, &signal_number);
  log::info(std::string("endpoint: ") + (signal_number == SIGINT ? "SIGINT" : "SIGTERM") + ", shutting down");
  server->stop();
  log::info("endpoint: stopped");
  return 0;
}

}  // namespace podworker::endpoint

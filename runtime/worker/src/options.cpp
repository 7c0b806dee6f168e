// Worker configuration: RUNPOD_* variables as the platform sets them, PODWORKER_* timing overrides,
// then command-line flags (which win).
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "podworker/log.h"
#include "podworker/worker.h"

namespace podworker {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr ? std::string() : std::string(v);
}

long long parse_integer(std::string_view text, std::string_view what, long long min, long long max) {
  long long value = 0;
  const auto* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (ec != std::errc() || ptr != end || value < min || value > max) {
    throw std::invalid_argument(std::string(what) + " must be an integer in [" + std::to_string(min) +
                                ", " + std::to_string(max) + "], got \"" + std::string(text) + "\"");
  }
  return value;
}

void env_ms(const char* name, std::chrono::milliseconds& out, long long min = 0) {
  const std::string v = env(name);
  if (!v.empty()) out = std::chrono::milliseconds(parse_integer(v, name, min, 7LL * 24 * 3600 * 1000));
}

bool truthy(std::string_view v) { return v == "1" || v == "true" || v == "TRUE" || v == "yes"; }

void replace_all(std::string& s, std::string_view from, const std::string& to) {
  for (std::size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

}  // namespace

std::string substitute_url(std::string url_template, const std::string& worker_id,
                           const std::string& id) {
  // Same order as the SDK: the worker id first, then the job (or, for job-take, worker) id.
  replace_all(url_template, "$RUNPOD_POD_ID", worker_id);
  replace_all(url_template, "$ID", id);
  return url_template;
}

std::string append_query(std::string url, std::string_view param) {
  url += url.find('?') == std::string::npos ? '?' : '&';
  url += param;
  return url;
}

WorkerOptions options_from_env() {
  WorkerOptions o;
  o.worker_id = env("RUNPOD_POD_ID");
  o.hostname = env("RUNPOD_POD_HOSTNAME");
  o.api_key = env("RUNPOD_AI_API_KEY");
  o.take_url = env("RUNPOD_WEBHOOK_GET_JOB");
  o.done_url = env("RUNPOD_WEBHOOK_POST_OUTPUT");
  o.stream_url = env("RUNPOD_WEBHOOK_POST_STREAM");
  o.ping_url = env("RUNPOD_WEBHOOK_PING");
  env_ms("RUNPOD_PING_INTERVAL", o.ping_interval, 1);
  if (const auto h = env("PODWORKER_HANDLER"); !h.empty()) o.handler = h;
  if (const auto c = env("PODWORKER_CONCURRENCY"); !c.empty()) {
    o.concurrency = static_cast<int>(parse_integer(c, "PODWORKER_CONCURRENCY", 1, 4096));
  }
  o.return_aggregate_stream = truthy(env("PODWORKER_RETURN_AGGREGATE_STREAM"));
  if (const auto b = env("PODWORKER_STREAM_BUFFER_BYTES"); !b.empty()) {
    o.stream_buffer_bytes = static_cast<std::size_t>(parse_integer(b, "PODWORKER_STREAM_BUFFER_BYTES", 1, 1LL << 40));
  }
  env_ms("PODWORKER_CONNECT_TIMEOUT_MS", o.connect_timeout, 1);
  env_ms("PODWORKER_REQUEST_TIMEOUT_MS", o.request_timeout, 1);
  env_ms("PODWORKER_LONG_POLL_TIMEOUT_MS", o.long_poll_timeout, 1);
  env_ms("PODWORKER_BACKOFF_INITIAL_MS", o.backoff_initial, 1);
  env_ms("PODWORKER_BACKOFF_MAX_MS", o.backoff_max, 1);
  env_ms("PODWORKER_RATE_LIMITED_BACKOFF_MS", o.rate_limited_backoff);
  env_ms("PODWORKER_MIN_POLL_INTERVAL_MS", o.min_poll_interval);
  env_ms("PODWORKER_SHUTDOWN_GRACE_MS", o.shutdown_grace);
  if (const auto t = env("PODWORKER_JOB_TIMEOUT_MS"); !t.empty()) {
    o.job_timeout = std::chrono::milliseconds(
        parse_integer(t, "PODWORKER_JOB_TIMEOUT_MS", 1, 7LL * 24 * 3600 * 1000));
  }
  if (const auto a = env("PODWORKER_POST_ATTEMPTS"); !a.empty()) {
    o.post_attempts = static_cast<int>(parse_integer(a, "PODWORKER_POST_ATTEMPTS", 1, 100));
  }
  return o;
}

void apply_flags(WorkerOptions& o, const std::vector<std::string>& args) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--") {  // the rest configures the embedded endpoint (--serve-api)
      o.api_args.insert(o.api_args.end(), args.begin() + static_cast<std::ptrdiff_t>(i) + 1, args.end());
      return;
    }
    std::string flag = args[i];
    std::string value;
    bool has_value = false;
    if (const auto eq = flag.find('='); flag.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      has_value = true;
    }
    // The SDK spells its flags with underscores and an rp_ prefix; accept those too.
    for (auto& ch : flag) ch = ch == '_' ? '-' : ch;
    if (flag.rfind("--rp-", 0) == 0) flag = "--" + flag.substr(5);
    auto next = [&]() -> std::string {
      if (has_value) return value;
      if (i + 1 >= args.size()) throw std::invalid_argument(flag + " needs a value");
      return args[++i];
    };
    if (flag == "--handler") {
      o.handler = next();
    } else if (flag == "--python") {
      // Sugar for the `python` handler's settings (see podworker/handlers/python.h).
      o.handler = "python";
      o.setting_flags.emplace_back("script", next());
    } else if (flag == "--python-exe") {
      o.setting_flags.emplace_back("python_exe", next());
    } else if (flag == "--concurrency") {
      o.concurrency = static_cast<int>(parse_integer(next(), "--concurrency", 1, 4096));
    } else if (flag == "--test-input") {
      o.test_input = next();
    } else if (flag == "--serve-api") {
      o.serve_api = true;
    } else if (flag == "--store") {
      // The embedded endpoint's job store; its own parser checks the value.
      o.api_args.insert(o.api_args.begin(), {"--store", next()});
    } else if (flag == "--api-host") {
      o.api_host = next();
    } else if (flag == "--api-port") {
      o.api_port = static_cast<int>(parse_integer(next(), "--api-port", 0, 65535));
    } else if (flag == "--metrics-port") {
      o.metrics_port = static_cast<int>(parse_integer(next(), "--metrics-port", 0, 65535));
    } else if (flag == "--metrics-host") {
      o.metrics_host = next();
    } else if (flag == "--log-level") {
      const std::string v = next();
      const auto lvl = log::parse_level(v, static_cast<log::Level>(-1));
      if (lvl == static_cast<log::Level>(-1)) throw std::invalid_argument("unknown --log-level " + v);
      log::set_level(lvl);
    } else if (flag == "--return-aggregate-stream") {
      o.return_aggregate_stream = true;
    } else if (flag == "--stream-buffer-bytes") {
      o.stream_buffer_bytes = static_cast<std::size_t>(parse_integer(next(), flag, 1, 1LL << 40));
    } else if (flag == "--job-timeout-ms") {
      o.job_timeout =
          std::chrono::milliseconds(parse_integer(next(), flag, 1, 7LL * 24 * 3600 * 1000));
    } else if (flag == "--set") {
      const std::string v = next();
      const auto eq = v.find('=');
      if (eq == std::string::npos || eq == 0)
        throw std::invalid_argument("--set needs NAME=VALUE, got \"" + v + "\"");
      o.setting_flags.emplace_back(v.substr(0, eq), v.substr(eq + 1));
    } else if (flag == "--config") {
      o.config_file = next();
    } else if (flag == "--shutdown-grace-ms") {
      o.shutdown_grace = std::chrono::milliseconds(parse_integer(next(), flag, 0, 86400000));
    } else {
      throw std::invalid_argument("unknown flag " + args[i]);
    }
  }
}

}  // namespace podworker

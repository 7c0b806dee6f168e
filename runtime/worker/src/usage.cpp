#include "usage.h"

#include "podworker/worker.h"

namespace podworker::worker {

const char* const kUsage = R"(usage: worker [flags]
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

}  // namespace podworker::worker

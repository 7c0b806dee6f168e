// The worker executable's logic: flags and environment → local test run, embedded endpoint, or
// the job loop against RUNPOD_WEBHOOK_* URLs. SIGTERM/SIGINT stop taking jobs and drain.
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
#include "signal_watcher.h"
#include "usage.h"

namespace podworker {
namespace {

using worker::SignalWatcher;

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
      std::fputs(worker::kUsage, stdout);
      std::fputs(worker::settings_help(registry).c_str(), stdout);
      return 0;
    }
  }
  try {
    options = options_from_env();
    apply_flags(options, args);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "worker: %s\n%s", e.what(), worker::kUsage);
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
      metrics =
          std::make_unique<worker::MetricsListener>(options.metrics_host, options.metrics_port);
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

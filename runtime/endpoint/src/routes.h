// URL routing, free of any HTTP library: /v2/{endpoint_id}/{operation}/{args...} or the same
// without the /v2/{endpoint_id} prefix for the default endpoint; query strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace podworker::endpoint {

enum class Op : std::uint8_t {
  run,
  runsync,
  status,
  stream,
  cancel,
  retry,
  purge_queue,
  health,
  job_take,
  job_take_batch,
  job_done,
  job_stream,
  ping,
  job_stop,
  openai_chat,    // POST openai/v1/chat/completions or openai/v1/completions (arg1: which, without '/')
  openai_models,  // GET openai/v1/models
  openai_model,   // GET openai/v1/models/{model}: arg1 is the model id as sent (may hold '/')
  openapi,        // GET openapi.json: the API's OpenAPI description
  metrics,        // GET metrics: Prometheus text format
  recent_jobs,    // GET recent-jobs: the last jobs submitted, for the dashboard
  dashboard,      // GET /: the live dashboard page
  docs,           // GET docs: the API's reference page, built from openapi.json in the browser
  asset,          // GET static/{file}: the pages' scripts and style sheet
};

enum class Method : std::uint8_t { get, post, other };

struct Route {
  std::string_view endpoint;  // empty: the default endpoint
  Op op;
  std::string_view arg1;  // job id, or worker id for worker routes
  std::string_view arg2;  // job id for job-done / job-stream
  std::string_view query;  // without the '?'
};

// nullopt: no such route (404). Arguments are not percent-decoded (ids never need it).
std::optional<Route> parse_route(std::string_view target);

// The route's name as the metrics label it ("run", "job-take", "openai/v1/chat/completions").
std::string_view op_name(Op op);

// Whether `method` is allowed for `op` (405 otherwise), and the Allow header text for it.
bool method_allowed(Op op, Method method);
std::string_view allowed_methods(Op op);

// The value of `name` in a query string, percent-decoded; nullopt when absent.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

// A path segment percent-decoded ('+' stays a '+': that rule is only for query strings).
std::string decode_path(std::string_view segment);

}  // namespace podworker::endpoint

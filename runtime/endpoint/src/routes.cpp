#include "routes.h"

#include <array>

namespace podworker::endpoint {

namespace {

struct OpInfo {
  std::string_view name;
  Op op;
  int args;  // path segments after the operation
};

constexpr std::array<OpInfo, 19> kOps{{
    {"run", Op::run, 0},
    {"runsync", Op::runsync, 0},
    {"status", Op::status, 1},
    {"stream", Op::stream, 1},
    {"cancel", Op::cancel, 1},
    {"retry", Op::retry, 1},
    {"purge-queue", Op::purge_queue, 0},
    {"health", Op::health, 0},
    {"job-take", Op::job_take, 1},
    {"job-take-batch", Op::job_take_batch, 1},
    {"job-done", Op::job_done, 2},
    {"job-stream", Op::job_stream, 2},
    {"ping", Op::ping, 1},
    {"job-stop", Op::job_stop, 1},
    {"openapi.json", Op::openapi, 0},
    {"metrics", Op::metrics, 0},
    {"recent-jobs", Op::recent_jobs, 0},
    {"docs", Op::docs, 0},
    {"static", Op::asset, 1},
}};

// Splits off the next '/'-separated segment of `path` (which has no leading '/').
std::string_view next_segment(std::string_view& path) {
  const auto slash = path.find('/');
  std::string_view seg = path.substr(0, slash);
  path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash + 1);
  return seg;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view s, bool plus_is_space = true) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && hex_value(s[i + 1]) >= 0 && hex_value(s[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex_value(s[i + 1]) * 16 + hex_value(s[i + 2])));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

}  // namespace

std::optional<Route> parse_route(std::string_view target) {
  Route route{};
  const auto q = target.find('?');
  if (q != std::string_view::npos) {
    route.query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  if (target.empty() || target.front() != '/') return std::nullopt;
  std::string_view path = target.substr(1);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);  // tolerate a trailing slash

  std::string_view first = next_segment(path);
  if (first.empty() && path.empty()) {  // "/": the dashboard
    route.op = Op::dashboard;
    return route;
  }
  if (first == "v2") {
    route.endpoint = next_segment(path);
    if (route.endpoint.empty()) return std::nullopt;
    first = next_segment(path);
  }
  if (first == "openai") {
    // OpenAI-compatible routes: a fixed path after the prefix; a model id may itself hold '/'
    // (e.g. "org/name"), so everything after models/ is the id.
    static constexpr std::string_view kModelPrefix = "v1/models/";
    if (path == "v1/chat/completions" || path == "v1/completions") {
      route.op = Op::openai_chat;
      route.arg1 = path;  // which of the two: the job's openai_route is "/" + arg1
    } else if (path == "v1/models") {
      route.op = Op::openai_models;
    } else if (path.starts_with(kModelPrefix)) {
      route.op = Op::openai_model;
      route.arg1 = path.substr(kModelPrefix.size());  // not empty: trailing slashes are gone
    } else {
      return std::nullopt;
    }
    return route;
  }
  for (const OpInfo& info : kOps) {
    if (info.name != first) continue;
    route.op = info.op;
    if (info.args >= 1) route.arg1 = next_segment(path);
    if (info.args >= 2) route.arg2 = next_segment(path);
    if (!path.empty()) return std::nullopt;
    if (info.args >= 1 && route.arg1.empty()) return std::nullopt;
    if (info.args >= 2 && route.arg2.empty()) return std::nullopt;
    return route;
  }
  return std::nullopt;
}

bool method_allowed(Op op, Method method) {
  switch (op) {
    case Op::status:
    case Op::stream: return method == Method::get || method == Method::post;
    case Op::health:
    case Op::openai_models:
    case Op::openai_model:
    case Op::openapi:
    case Op::metrics:
    case Op::recent_jobs:
    case Op::dashboard:
    case Op::docs:
    case Op::asset:
    case Op::job_take:
    case Op::job_take_batch:
    case Op::job_stop: return method == Method::get;
    case Op::ping: return method == Method::get || method == Method::post;
    case Op::run:
    case Op::runsync:
    case Op::cancel:
    case Op::retry:
    case Op::purge_queue:
    case Op::job_done:
    case Op::job_stream:
    case Op::openai_chat: return method == Method::post;
  }
  return false;
}

std::string_view op_name(Op op) {
  switch (op) {
    case Op::openai_chat: return "openai/v1/chat/completions";
    case Op::openai_models: return "openai/v1/models";
    case Op::openai_model: return "openai/v1/models/{model}";
    case Op::dashboard: return "/";
    default: break;
  }
  for (const OpInfo& info : kOps) {
    if (info.op == op) return info.name;
  }
  return "unknown";
}

std::string_view allowed_methods(Op op) {
  if (method_allowed(op, Method::get) && method_allowed(op, Method::post)) return "GET, POST";
  return method_allowed(op, Method::get) ? "GET" : "POST";
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    const auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    const auto eq = pair.find('=');
    const std::string_view key = pair.substr(0, eq);
    if (key != name) continue;
    return eq == std::string_view::npos ? std::string{} : percent_decode(pair.substr(eq + 1));
  }
  return std::nullopt;
}

std::string decode_path(std::string_view segment) { return percent_decode(segment, false); }

}  // namespace podworker::endpoint

// The endpoint's request path in process: bytes -> Beast's request parser -> routing -> the job
// store and back (Server::serve_bytes, which shares its request handling with a connection). The
// input is a conversation of one or more exchanges separated by "\n~~~\n"; each exchange is raw
// HTTP/1.1 bytes (one or more requests). "{id}" in an exchange becomes the last job id the server
// sent back, so run -> take -> stream -> done -> status sequences reach the stateful routes.
// Long polls are configured to return at once; an exception escaping the request handling aborts.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "podworker/endpoint/server.h"
#include "podworker/log.h"

using namespace podworker::endpoint;

namespace {

Options fuzz_options() {
  Options o;
  o.endpoint_ids = {"local", "other"};
  o.runsync_wait_default = o.runsync_wait_min = o.runsync_wait_max = Millis(0);
  o.take_wait = o.stop_wait = o.stream_wait = o.sse_keepalive = Millis(0);
  o.max_run_body = o.max_runsync_body = o.max_worker_body = 2048;
  o.max_other_body = 512;
  return o;
}

// The value of the last "id":"..." in a response, or "" when there is none.
std::string last_job_id(std::string_view response) {
  constexpr std::string_view key = R"("id":")";
  const auto at = response.rfind(key);
  if (at == std::string_view::npos) return {};
  const auto start = at + key.size();
  const auto end = response.find('"', start);
  return end == std::string_view::npos ? std::string{}
                                       : std::string(response.substr(start, end - start));
}

std::string substitute(std::string_view exchange, const std::string& id) {
  std::string out;
  out.reserve(exchange.size());
  for (std::size_t i = 0; i < exchange.size();) {
    if (exchange.substr(i, 4) == "{id}") {
      out += id;
      i += 4;
    } else {
      out += exchange[i++];
    }
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  podworker::log::set_level(podworker::log::Level::error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view separator = "\n~~~\n";
  Server server(fuzz_options());
  std::string_view rest(reinterpret_cast<const char*>(data), size);
  std::string id;
  while (!rest.empty()) {
    const auto cut = rest.find(separator);
    const std::string_view exchange = rest.substr(0, cut);
    rest = cut == std::string_view::npos ? std::string_view{} : rest.substr(cut + separator.size());
    const std::string response = server.serve_bytes(substitute(exchange, id));
    if (!response.empty() && !response.starts_with("HTTP/1.")) std::abort();
    if (response.find(" 500 Internal Server Error") != std::string::npos &&
        response.find("unhandled route") != std::string::npos) {
      std::abort();
    }
    if (std::string next = last_job_id(response); !next.empty()) id = std::move(next);
  }
  return 0;
}

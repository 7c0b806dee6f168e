#include "serve_api.h"

#include <cstdio>
#include <cstdlib>
#include <stdexcept>

#include "podworker/endpoint/server.h"
#include "podworker/log.h"

namespace podworker::worker {
namespace {

class ServerApi final : public EmbeddedApi {
 public:
  explicit ServerApi(endpoint::Options options) : server_(std::move(options)) { server_.start(); }
  ~ServerApi() override { server_.stop(); }
  std::string url() const override { return server_.url(); }
  const endpoint::Options& options() const { return server_.options(); }

 private:
  endpoint::Server server_;
};

}  // namespace

void point_at_endpoint(WorkerOptions& o, const std::string& base_url,
                       const std::string& endpoint_id) {
  const std::string v2 = base_url + "/v2/" + endpoint_id;
  o.take_url = v2 + "/job-take/$ID";
  o.done_url = v2 + "/job-done/$RUNPOD_POD_ID/$ID";
  o.stream_url = v2 + "/job-stream/$RUNPOD_POD_ID/$ID";
  o.ping_url = v2 + "/ping/$RUNPOD_POD_ID";
}

std::unique_ptr<EmbeddedApi> start_embedded_api(WorkerOptions& o, const chat::ChatLimits& limits) {
  endpoint::Options eo;
  // The client-facing key, as the `endpoint` program takes it; the embedded worker uses it too.
  if (const char* key = std::getenv("PODWORKER_API_KEY"); key != nullptr) eo.api_key = key;
  if (const auto cli = endpoint::parse_cli(o.api_args, eo); !cli.error.empty()) {
    throw std::invalid_argument("endpoint flags after --: " + cli.error);
  }
  if (eo.openai_context == 0) eo.openai_context = limits.max_context;
  eo.host = o.api_host;
  eo.port = static_cast<std::uint16_t>(o.api_port);
  auto api = std::make_unique<ServerApi>(eo);
  std::printf("podworker endpoint listening on %s\n", api->url().c_str());
  std::fflush(stdout);
  point_at_endpoint(o, api->url(), api->options().endpoint_ids.front());
  // Beat well within the endpoint's grace period so a busy worker is never taken for dead.
  o.ping_interval = std::min(o.ping_interval, api->options().heartbeat_grace / 3);
  if (!eo.api_key.empty()) o.api_key = eo.api_key;
  return api;
}

}  // namespace podworker::worker

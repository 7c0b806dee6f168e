// --serve-api: the local endpoint running inside the worker process, with the worker's URLs
// pointed at it, so one process serves the client API and runs the jobs submitted to it.
#pragma once

#include <memory>
#include <string>

#include "podworker/chat_request.h"
#include "podworker/worker.h"

namespace podworker::worker {

class EmbeddedApi {
 public:
  virtual ~EmbeddedApi() = default;
  // "http://host:port"
  virtual std::string url() const = 0;
};

// Starts the endpoint on options.api_host:api_port (port 0 = any free port), prints its address,
// and fills options' RUNPOD_WEBHOOK_* templates (and api key) with URLs pointing at it. `limits`
// (the handler's, after init()) bound the OpenAI route's requests unless --openai-context says.
std::unique_ptr<EmbeddedApi> start_embedded_api(WorkerOptions& options, const chat::ChatLimits& limits = {});

// The worker-side URL templates for an endpoint at base_url serving endpoint_id.
void point_at_endpoint(WorkerOptions& options, const std::string& base_url,
                       const std::string& endpoint_id);

}  // namespace podworker::worker

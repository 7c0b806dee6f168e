// Which JobStore an endpoint runs on, from --store: "memory" (the default: one process, nothing to
// run beside it) or "redis://HOST:PORT[/DB]" (replicas sharing one Redis; see redis_store.h).
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include "store.h"

namespace podworker::endpoint {

// A store operation failed for a reason outside the request (the store's server is away): the
// request gets 503 and may be retried; the endpoint goes on.
class StoreUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Empty when `spec` names a store, else a message for the command line.
std::string check_store_spec(std::string_view spec);

// Throws std::invalid_argument for a bad spec, RedisError when Redis cannot be reached.
std::unique_ptr<JobStore> make_store(std::string_view spec, const std::string& endpoint_id,
                                     StoreOptions options,
                                     std::function<void(TerminalEvent)> on_terminal);

}  // namespace podworker::endpoint

#include "store_factory.h"

#include <stdexcept>

#include "memory_store.h"
#include "redis_store.h"

namespace podworker::endpoint {

std::string check_store_spec(std::string_view spec) {
  if (spec == "memory") return {};
  std::string error;
  if (parse_redis_url(spec, error)) return {};
  return "--store: expected memory or redis://HOST:PORT[/DB], got '" + std::string(spec) + "'";
}

std::unique_ptr<JobStore> make_store(std::string_view spec, const std::string& endpoint_id,
                                     StoreOptions options,
                                     std::function<void(TerminalEvent)> on_terminal) {
  if (spec.empty() || spec == "memory")
    return std::make_unique<MemoryStore>(std::move(options), std::move(on_terminal));
  std::string error;
  const auto address = parse_redis_url(spec, error);
  if (!address) throw std::invalid_argument(error);
  return std::make_unique<RedisStore>(*address, endpoint_id, std::move(options),
                                      std::move(on_terminal));
}

}  // namespace podworker::endpoint

// API-key check for `Authorization: Bearer <key>` or the bare key (what RunPod workers send).
#pragma once

#include <string_view>

namespace podworker::endpoint {

// True when `header` carries `key`. The comparison time does not depend on where the texts differ.
bool authorized(std::string_view header, std::string_view key);

}  // namespace podworker::endpoint

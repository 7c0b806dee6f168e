#include "web_assets.h"

namespace podworker::endpoint {

std::optional<WebAsset> static_asset(std::string_view name) {
  if (name == "dashboard.js") return WebAsset{dashboard_js(), "text/javascript; charset=utf-8"};
  if (name == "docs.js") return WebAsset{docs_js(), "text/javascript; charset=utf-8"};
  if (name == "podworker.css") return WebAsset{podworker_css(), "text/css; charset=utf-8"};
  return std::nullopt;
}

}  // namespace podworker::endpoint

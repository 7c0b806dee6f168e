// The dashboard (GET /), the API reference page (GET /docs) and their scripts and style sheet
// (GET /static/{file}), kept as files in runtime/endpoint/web/ and embedded by the build
// (cmake/EmbedText.cmake), so the binary needs nothing beside it and no CDN.
#pragma once

#include <optional>
#include <string_view>

namespace podworker::endpoint {

std::string_view dashboard_html();
std::string_view docs_html();
std::string_view dashboard_js();
std::string_view docs_js();
std::string_view podworker_css();

struct WebAsset {
  std::string_view body;
  std::string_view content_type;
};
// /static/{name}: nullopt for a name that is not one of the files.
std::optional<WebAsset> static_asset(std::string_view name);

}  // namespace podworker::endpoint

// The endpoint's OpenAPI description (runtime/endpoint/openapi.json, written by hand and embedded
// at build time by cmake/EmbedText.cmake), served at GET /openapi.json.
#pragma once

#include <string_view>

namespace podworker::endpoint {

std::string_view openapi_document();

}  // namespace podworker::endpoint

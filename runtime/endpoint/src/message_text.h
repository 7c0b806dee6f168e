// Text for error messages, which quote what the client sent (job ids, paths, endpoint ids, model
// names): a JSON text must be UTF-8, so bytes that are not valid UTF-8 are quoted as %XX, as they
// would be in a URL. Valid UTF-8 (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF)
// is kept as it is.
#pragma once

#include <string>
#include <string_view>

namespace podworker::endpoint {

std::string utf8_for_message(std::string_view text);

}  // namespace podworker::endpoint

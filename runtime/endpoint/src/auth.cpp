#include "auth.h"

#include <cctype>

namespace podworker::endpoint {

namespace {

bool starts_with_bearer(std::string_view h) {
  constexpr std::string_view bearer = "bearer ";
  if (h.size() < bearer.size()) return false;
  for (std::size_t i = 0; i < bearer.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(h[i])) != bearer[i]) return false;
  }
  return true;
}

// Constant time in the content of both texts; only their lengths may show.
bool constant_time_equal(std::string_view a, std::string_view b) {
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  const std::size_t n = b.size();
  for (std::size_t i = 0; i < n; ++i) {
    const unsigned char ca = i < a.size() ? static_cast<unsigned char>(a[i]) : 0u;
    diff |= ca ^ static_cast<unsigned char>(b[i]);
  }
  return diff == 0;
}

}  // namespace

bool authorized(std::string_view header, std::string_view key) {
  while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  while (!header.empty() && header.back() == ' ') header.remove_suffix(1);
  if (starts_with_bearer(header)) {
    header.remove_prefix(7);
    while (!header.empty() && header.front() == ' ') header.remove_prefix(1);
  }
  return constant_time_equal(header, key);
}

}  // namespace podworker::endpoint

// Identifiers: random UUIDs for jobs and workers.
#pragma once

#include <string>

namespace podworker {

// A random version-4 UUID in its canonical 36-character text form. Thread-safe.
std::string make_uuid();

}  // namespace podworker

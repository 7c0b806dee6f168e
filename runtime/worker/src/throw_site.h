// Where an exception was thrown: the stack recorded by the worker's __cxa_throw hook
// (throw_site.cpp), looked up by the thrown object's address.
#pragma once

#include <boost/stacktrace.hpp>
#include <optional>

namespace podworker::worker {

// The stack of the throw of the exception object at `object` (its most-derived address), if this
// thread threw it recently; nullopt otherwise (thrown on another thread, or by foreign code).
std::optional<boost::stacktrace::stacktrace> throw_site(const void* object);

}  // namespace podworker::worker

#include <doctest/doctest.h>

#include "podworker/log.h"

using namespace podworker;

TEST_CASE("log levels parse RunPod's names") {
  CHECK(log::parse_level("error") == log::Level::error);
  CHECK(log::parse_level("WARN") == log::Level::warn);
  CHECK(log::parse_level("Warning") == log::Level::warn);
  CHECK(log::parse_level("TRACE") == log::Level::trace);
  CHECK(log::parse_level("bogus", log::Level::debug) == log::Level::debug);
  log::set_level(log::Level::warn);
  CHECK(log::enabled(log::Level::error));
  CHECK_FALSE(log::enabled(log::Level::info));
  log::set_level(log::Level::info);
}

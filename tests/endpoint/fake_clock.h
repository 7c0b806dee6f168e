// The store's clock in tests: time moves only when the test says, so rules about deadlines are
// checked without sleeping.
#pragma once

#include <chrono>

#include "store.h"

namespace podworker::test {

class FakeClock final : public podworker::endpoint::StoreClock {
 public:
  time_point now() const override { return now_; }
  void advance(std::chrono::milliseconds d) { now_ += d; }

 private:
  time_point now_ = time_point{} + std::chrono::hours(1);
};

}  // namespace podworker::test

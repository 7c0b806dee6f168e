// Fitness checks a handler registers: run once when a worker starts, before it takes its first
// job, after the worker's own system checks (memory, disk, GPU). A check fails by throwing; the
// worker then reports itself unhealthy on its ping and exits non-zero with the check's message,
// so the platform replaces it before any job reaches a machine that cannot run it.
//
// Register from the handler's constructor or at static initialisation (the worker creates the
// handler, then runs the checks, then calls init()):
//
//   podworker::fitness::register_check("weights present", [] {
//     if (!std::filesystem::exists("/models/model.gguf")) throw std::runtime_error("no model");
//   });
//   podworker::fitness::require_cuda();  // no visible GPU fails the start, unless skipped
#pragma once

#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace podworker::fitness {

// Throws (any std::exception) to fail; returning passes.
using Check = std::function<void()>;

struct NamedCheck {
  std::string name;
  Check check;
};

class Registry {
 public:
  void add(std::string name, Check check) {
    std::lock_guard lock(mu_);
    checks_.push_back({std::move(name), std::move(check)});
  }
  void set_requires_cuda() {
    std::lock_guard lock(mu_);
    requires_cuda_ = true;
  }
  // A copy, so a check that registers another one cannot invalidate the list being run.
  std::vector<NamedCheck> checks() const {
    std::lock_guard lock(mu_);
    return checks_;
  }
  bool requires_cuda() const {
    std::lock_guard lock(mu_);
    return requires_cuda_;
  }
  void clear() {
    std::lock_guard lock(mu_);
    checks_.clear();
    requires_cuda_ = false;
  }

 private:
  mutable std::mutex mu_;
  std::vector<NamedCheck> checks_;
  bool requires_cuda_ = false;
};

// The process's registry (an inline function's static: one instance in the program).
inline Registry& registry() {
  static Registry r;
  return r;
}

// Checks run in the order they were registered.
inline void register_check(std::string name, Check check) {
  registry().add(std::move(name), std::move(check));
}

// The handler needs CUDA: the GPU checks then fail a start without a visible GPU instead of
// skipping (RUNPOD_SKIP_GPU_CHECK still skips them).
inline void require_cuda() {
  registry().set_requires_cuda();
}

}  // namespace podworker::fitness

// The watches of one store instance: who waits for a job, a worker's stop channel, or the queue.
// MemoryStore and RedisStore both hold one; the store says when something changed (fire()) and how
// many jobs are queued (set_queued()), the registry decides whom to wake.
//
// Queue watches follow one rule: at most one woken poller per queued job. Waking every poll for
// each job costs each of them a failed take, which grows with the number of workers; waking too
// few lets a job wait while a poller does. A woken poller that leaves without taking the job (its
// client had gone, its wait ran out) hands its wake-up on to the next one.
//
// Thread safety: every member may be called from any thread. Notify callbacks run under the
// registry's lock: they must be quick and must not call back into the registry or the store. A
// store may call in while holding its own lock (lock order: store, then registry), never the
// other way round.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "store.h"

namespace podworker::endpoint {

class WatchRegistry {
 public:
  WatchRegistry() = default;
  WatchRegistry(const WatchRegistry&) = delete;
  WatchRegistry& operator=(const WatchRegistry&) = delete;

  // Registers `notify` for `topic` (`key` names the job or worker; ignored for the queue).
  // Registering wakes nothing: the caller looks for itself right after.
  Subscription watch(Topic topic, std::string_view key, std::function<void()> notify);
  // Something about the job or worker `key` changed: every watch of it fires.
  void fire(Topic topic, std::string_view key);
  // The number of jobs now queued. Wakes the longest-waiting queue watches not yet woken until
  // there are as many woken as queued jobs.
  void set_queued(std::size_t queued);
  // Fires every watch, the queue's included (shutdown; a change channel lost and found again).
  void fire_all();

  // Whether a job or stop watch of `key` is registered (not for the queue).
  bool watched(Topic topic, std::string_view key) const;

  // For tests and health: queue watches registered, and how many of them are woken.
  std::size_t takers() const;
  std::size_t woken_takers() const;

 private:
  struct Watch {
    std::uint64_t token;
    std::function<void()> notify;
  };
  struct Taker {
    std::function<void()> notify;
    bool woken = false;
  };

  static std::string watch_key(Topic topic, std::string_view key);
  void wake_takers();  // mu_ held
  void drop_taker(std::uint64_t token);
  void drop_watch(const std::string& key, std::uint64_t token);

  mutable std::mutex mu_;
  std::unordered_map<std::string, std::vector<Watch>> watches_;
  // Queue watches by token, which grows: the first not yet woken is the longest waiting poller.
  std::map<std::uint64_t, Taker> takers_;
  std::size_t woken_takers_ = 0;
  std::size_t queued_ = 0;
  std::uint64_t next_token_ = 0;
};

}  // namespace podworker::endpoint

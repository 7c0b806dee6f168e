#include "watch_registry.h"

namespace podworker::endpoint {

std::string WatchRegistry::watch_key(Topic topic, std::string_view key) {
  std::string k;
  k.reserve(key.size() + 1);
  k.push_back(static_cast<char>('0' + static_cast<int>(topic)));
  k.append(key);
  return k;
}

Subscription WatchRegistry::watch(Topic topic, std::string_view key, std::function<void()> notify) {
  std::lock_guard lock(mu_);
  const std::uint64_t token = ++next_token_;
  if (topic == Topic::queue) {
    takers_.emplace(token, Taker{std::move(notify), false});
    return Subscription([this, token] { drop_taker(token); });
  }
  std::string k = watch_key(topic, key);
  watches_[k].push_back({token, std::move(notify)});
  return Subscription([this, k = std::move(k), token] { drop_watch(k, token); });
}

void WatchRegistry::fire(Topic topic, std::string_view key) {
  std::lock_guard lock(mu_);
  if (topic == Topic::queue) return wake_takers();
  const auto it = watches_.find(watch_key(topic, key));
  if (it == watches_.end()) return;
  for (const Watch& w : it->second) w.notify();
}

void WatchRegistry::set_queued(std::size_t queued) {
  std::lock_guard lock(mu_);
  queued_ = queued;
  wake_takers();
}

void WatchRegistry::fire_all() {
  std::lock_guard lock(mu_);
  for (const auto& [key, list] : watches_) {
    for (const Watch& w : list) w.notify();
  }
  for (auto& [token, taker] : takers_) {
    if (!taker.woken) ++woken_takers_;
    taker.woken = true;
    taker.notify();
  }
}

bool WatchRegistry::watched(Topic topic, std::string_view key) const {
  std::lock_guard lock(mu_);
  const auto it = watches_.find(watch_key(topic, key));
  return it != watches_.end() && !it->second.empty();
}

std::size_t WatchRegistry::takers() const {
  std::lock_guard lock(mu_);
  return takers_.size();
}

std::size_t WatchRegistry::woken_takers() const {
  std::lock_guard lock(mu_);
  return woken_takers_;
}

void WatchRegistry::wake_takers() {
  for (auto it = takers_.begin(); woken_takers_ < queued_ && it != takers_.end(); ++it) {
    if (it->second.woken) continue;
    it->second.woken = true;
    ++woken_takers_;
    it->second.notify();
  }
}

void WatchRegistry::drop_taker(std::uint64_t token) {
  std::lock_guard lock(mu_);
  const auto it = takers_.find(token);
  if (it == takers_.end()) return;
  const bool woken = it->second.woken;
  takers_.erase(it);
  if (!woken) return;
  --woken_takers_;
  wake_takers();  // a woken poller that leaves without the job hands the wake-up on
}

void WatchRegistry::drop_watch(const std::string& key, std::uint64_t token) {
  std::lock_guard lock(mu_);
  const auto it = watches_.find(key);
  if (it == watches_.end()) return;
  std::erase_if(it->second, [token](const Watch& w) { return w.token == token; });
  if (it->second.empty()) watches_.erase(it);
}

}  // namespace podworker::endpoint

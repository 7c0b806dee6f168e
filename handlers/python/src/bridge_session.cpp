#include "bridge_session.h"

#include <stdexcept>

#include "podworker/log.h"
#include "podworker/thread_name.h"

namespace podworker::handlers::python {

void JobChannel::push(Frame frame) {
  {
    std::lock_guard lock(mu_);
    frames_.push_back(std::move(frame));
  }
  cv_.notify_all();
}

void JobChannel::close(std::string reason) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    reason_ = std::move(reason);
  }
  cv_.notify_all();
}

JobChannel::Wait JobChannel::next(Frame& out, std::stop_token stop,
                                  std::optional<std::chrono::steady_clock::time_point> deadline) {
  std::unique_lock lock(mu_);
  auto ready = [&] { return !frames_.empty() || closed_; };
  bool woke = false;
  if (deadline) {
    woke = cv_.wait_until(lock, stop, *deadline, ready);
  } else {
    woke = cv_.wait(lock, stop, ready);
  }
  if (!frames_.empty()) {  // frames already sent are handled before a close or a stop
    out = std::move(frames_.front());
    frames_.pop_front();
    return Wait::frame;
  }
  if (closed_) return Wait::closed;
  if (stop.stop_requested()) return Wait::stopped;
  (void)woke;
  return Wait::timed_out;
}

BridgeSession::BridgeSession(const BridgeCommand& command, std::chrono::milliseconds start_timeout)
    : process_(command) {
  reader_ = std::jthread([this] {
    name_this_thread("pw-py-bridge");
    read_loop();
  });
  std::unique_lock lock(mu_);
  if (!cv_.wait_for(lock, start_timeout, [&] { return ready_ || fatal_.has_value(); })) {
    lock.unlock();
    process_.close_input();
    process_.reap(std::chrono::milliseconds(0));
    reader_.join();
    throw std::runtime_error(command.handler_file +
                             " did not call runpod.serverless.start() within " +
                             std::to_string(start_timeout.count() / 1000) + " s");
  }
  if (fatal_) {
    const std::string why = *fatal_;
    lock.unlock();
    process_.close_input();
    process_.reap(std::chrono::milliseconds(3000));
    reader_.join();
    throw std::runtime_error(why);
  }
}

BridgeSession::~BridgeSession() {
  process_.close_input();
  process_.reap(std::chrono::milliseconds(3000));
  if (reader_.joinable()) reader_.join();
}

std::shared_ptr<JobChannel> BridgeSession::open(std::uint64_t seq) {
  auto channel = std::make_shared<JobChannel>();
  std::lock_guard lock(mu_);
  if (!alive_) channel->close("the Python handler process is not running");
  channels_[seq] = channel;
  return channel;
}

void BridgeSession::forget(std::uint64_t seq) {
  std::lock_guard lock(mu_);
  channels_.erase(seq);
}

bool BridgeSession::send(const json::Value& frame) {
  return process_.send(json::to_string(frame));
}

std::optional<int> BridgeSession::ask_concurrency(int current, std::chrono::milliseconds timeout) {
  std::lock_guard ask(ask_mu_);
  {
    std::lock_guard lock(mu_);
    answer_.reset();
  }
  json::Document q;
  q.SetObject();
  q.AddMember("op", "concurrency", q.GetAllocator());
  q.AddMember("current", current, q.GetAllocator());
  if (!send(q)) return std::nullopt;
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return answer_.has_value() || !alive_; });
  return answer_;
}

void BridgeSession::read_loop() {
  std::string body;
  std::string error;
  while (process_.receive(body, error)) {
    json::Document doc;
    try {
      doc = json::parse_object(body, kMaxFrameBytes, json::kMaxEnvelopedDepth + 4);
    } catch (const std::exception& e) {
      error = std::string("it sent a frame that is not JSON: ") + e.what();
      break;
    }
    const std::string op = json::get_string(doc, "op");
    if (op == "ready") {
      std::lock_guard lock(mu_);
      config_.kind = json::get_string(doc, "kind");
      config_.return_aggregate_stream = json::get_bool(doc, "return_aggregate_stream", false);
      config_.refresh_worker = json::get_bool(doc, "refresh_worker", false);
      config_.concurrency_modifier = json::get_bool(doc, "concurrency_modifier", false);
      config_.python_version = json::get_string(doc, "python");
      ready_ = true;
      cv_.notify_all();
      continue;
    }
    if (op == "fatal") {
      std::lock_guard lock(mu_);
      fatal_ = json::get_string(doc, "message");
      cv_.notify_all();
      continue;
    }
    if (op == "concurrency") {
      std::lock_guard lock(mu_);
      answer_ = static_cast<int>(json::get_int(doc, "value", 1));
      cv_.notify_all();
      continue;
    }
    const auto seq = static_cast<std::uint64_t>(json::get_int(doc, "seq", -1));
    std::shared_ptr<JobChannel> channel;
    {
      std::lock_guard lock(mu_);
      if (auto it = channels_.find(seq); it != channels_.end()) channel = it->second;
    }
    // A job that has already returned (given up after a cancel) drops what comes late.
    if (channel) channel->push({std::move(doc), body.size()});
  }
  on_death(error);
}

void BridgeSession::on_death(const std::string& error) {
  const std::string how = process_.reap(std::chrono::milliseconds(2000));
  std::string why = "the Python handler process " + how;
  if (!error.empty()) why += " (" + error + ")";
  std::map<std::uint64_t, std::shared_ptr<JobChannel>> orphans;
  {
    std::lock_guard lock(mu_);
    alive_ = false;
    if (!ready_ && !fatal_)
      fatal_ = why + " before runpod.serverless.start() (its output is above)";
    orphans.swap(channels_);
    cv_.notify_all();
  }
  if (ready_ && !orphans.empty())
    log::error(why + " while running " + std::to_string(orphans.size()) + " job(s)");
  for (auto& [seq, channel] : orphans) channel->close(why + " while running this job");
}

}  // namespace podworker::handlers::python

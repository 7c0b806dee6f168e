#include "llm/engine.h"

#include <algorithm>
#include <chrono>
#include <iterator>
#include <stdexcept>
#include <stop_token>

#include "podworker/log.h"
#include "podworker/thread_name.h"

namespace podworker::llm {

using Clock = std::chrono::steady_clock;

std::string_view finish_reason_name(FinishReason reason) {
  switch (reason) {
    case FinishReason::stop: return "stop";
    case FinishReason::length: return "length";
    case FinishReason::cancelled: return "cancelled";
    case FinishReason::error: return "error";
  }
  return "?";
}

// One request's state. The scheduler owns the fields below `scheduler-only`; the rest is shared
// under `mutex`.
struct Engine::Active {
  GenerationRequest request;
  std::stop_token stop;
  std::atomic<bool> consumer_done{false};  // the callback returned false

  std::mutex mutex;
  std::condition_variable cv;
  std::deque<SampledToken> tokens;
  bool done = false;
  GenerationStats stats;

  // scheduler-only
  SeqId seq = -1;
  std::size_t prefilled = 0;
  int generated = 0;
  std::int32_t last = 0;
  Clock::time_point submitted, first, latest;

  bool wants_out() const { return stop.stop_requested() || consumer_done.load(std::memory_order_relaxed); }
};

Engine::Engine(std::unique_ptr<Backend> backend, EngineOptions options)
    : backend_(std::move(backend)), options_(std::move(options)) {
  if (!backend_) throw std::invalid_argument("Engine: no backend");
  options_.prefill_chunk = std::max(1, options_.prefill_chunk);
  scheduler_ = std::jthread([this](std::stop_token stop) {
    name_this_thread("pw-llm-sched");
    run(stop);
  });
}

Engine::~Engine() {
  scheduler_.request_stop();
  wake_.notify_all();
  if (scheduler_.joinable()) scheduler_.join();
}

GenerationStats Engine::generate(const GenerationRequest& request, const std::function<bool(std::int32_t)>& on_token,
                                 std::stop_token stop) {
  return generate_tokens(request, [&](const SampledToken& t) { return on_token(t.token); }, stop);
}

GenerationStats Engine::generate_tokens(const GenerationRequest& request,
                                        const std::function<bool(const SampledToken&)>& on_token,
                                        std::stop_token stop) {
  if (request.top_logprobs > kMaxTopLogprobs) {
    throw std::invalid_argument("top_logprobs must be at most " + std::to_string(kMaxTopLogprobs));
  }
  if (request.prompt.empty()) throw std::invalid_argument("the prompt is empty");
  if (static_cast<int>(request.prompt.size()) >= backend_->max_context()) {
    throw std::invalid_argument("the prompt has " + std::to_string(request.prompt.size()) +
                                " tokens; the context holds " + std::to_string(backend_->max_context()));
  }
  if (request.max_tokens < 1) throw std::invalid_argument("max_tokens must be at least 1");
  for (std::int32_t t : request.prompt) {
    if (t < 0 || t >= backend_->config().n_vocab) throw std::invalid_argument("prompt token outside the vocabulary");
  }
  auto active = std::make_shared<Active>();
  active->request = request;
  active->stop = stop;
  active->submitted = Clock::now();
  {
    std::lock_guard lock(mutex_);
    waiting_.push_back(active);
  }
  wake_.notify_all();
  // A request cancelled while it waits for a slot must wake the scheduler, which may be asleep
  // because every slot is held by a paused request; taking the mutex orders the notification after
  // the scheduler's predicate check, so the wake-up cannot be lost.
  const std::stop_callback wake_on_cancel(stop, [this] {
    { std::lock_guard lock(mutex_); }
    wake_.notify_all();
  });

  std::vector<SampledToken> batch;
  int delivered = 0;
  bool cancelled = false;
  while (true) {
    bool finished = false;
    {
      std::unique_lock lock(active->mutex);
      active->cv.wait(lock, [&] { return !active->tokens.empty() || active->done; });
      batch.assign(std::make_move_iterator(active->tokens.begin()), std::make_move_iterator(active->tokens.end()));
      active->tokens.clear();
      finished = active->done;
    }
    // A full queue paused this request's decoding; now that it is empty the scheduler may resume it.
    if (!finished && options_.max_queued_tokens > 0 && static_cast<int>(batch.size()) >= options_.max_queued_tokens) {
      {
        std::lock_guard lock(mutex_);
        ++resumed_;
      }
      wake_.notify_all();
    }
    for (const SampledToken& t : batch) {
      // The scheduler may run ahead of a slow consumer; the consumer's view decides where the
      // generation ends, so a cancellation takes effect at the next token it would have seen.
      if (active->consumer_done.load(std::memory_order_relaxed)) break;
      if (stop.stop_requested()) {
        cancelled = true;
        active->consumer_done.store(true, std::memory_order_relaxed);
        break;
      }
      ++delivered;
      if (!on_token(t)) active->consumer_done.store(true, std::memory_order_relaxed);
    }
    if (finished) break;
  }
  std::lock_guard lock(active->mutex);
  GenerationStats stats = active->stats;
  if (stats.finish_reason != FinishReason::error && delivered < stats.output_tokens) {
    stats.output_tokens = delivered;
    stats.finish_reason = cancelled ? FinishReason::cancelled : FinishReason::stop;
  }
  if (cancelled) stats.finish_reason = FinishReason::cancelled;
  return stats;
}

namespace {

double ms_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

}  // namespace

void Engine::run(std::stop_token stop) {
  std::vector<std::shared_ptr<Active>> running;    // prefilled, decoding
  std::vector<std::shared_ptr<Active>> admitting;  // holding a sequence, prompt not yet done
  std::vector<DecodeStep> steps;
  std::vector<SampleSpec> specs;
  std::vector<std::int32_t> out;
  std::vector<float> logits;  // host logits, for the steps whose requests want logprobs
  std::vector<std::uint64_t> scratch;

  const auto finish = [&](Active& a, FinishReason reason, std::string error = {}) {
    if (a.seq >= 0) backend_->free_sequence(a.seq);
    a.seq = -1;
    std::lock_guard lock(a.mutex);
    GenerationStats& s = a.stats;
    s.input_tokens = static_cast<int>(a.request.prompt.size());
    s.output_tokens = a.generated;
    s.finish_reason = reason;
    s.error = std::move(error);
    const Clock::time_point end = Clock::now();
    s.total_ms = ms_between(a.submitted, end);
    if (a.generated > 0) s.time_to_first_token_ms = ms_between(a.submitted, a.first);
    if (a.generated > 1) s.tokens_per_second = (a.generated - 1) / (ms_between(a.first, a.latest) / 1000.0);
    a.done = true;
    a.cv.notify_all();
  };
  // Hands a sampled token to the requester, or ends the request on an end token or a limit.
  const auto deliver = [&](Active& a, SampledToken sampled) -> bool {
    const std::int32_t token = sampled.token;
    const Clock::time_point now = Clock::now();
    if (std::find(options_.end_tokens.begin(), options_.end_tokens.end(), token) != options_.end_tokens.end()) {
      finish(a, FinishReason::stop);
      return false;
    }
    if (a.generated == 0) a.first = now;
    a.latest = now;
    ++a.generated;
    a.last = token;
    {
      std::lock_guard lock(a.mutex);
      a.tokens.push_back(std::move(sampled));
      a.stats.peak_queued_tokens = std::max(a.stats.peak_queued_tokens, static_cast<int>(a.tokens.size()));
    }
    a.cv.notify_all();
    if (a.generated >= a.request.max_tokens || backend_->sequence_length(a.seq) + 1 > backend_->max_context()) {
      finish(a, FinishReason::length);
      return false;
    }
    return true;
  };
  const auto end_reason = [](const Active& a) {
    return a.stop.stop_requested() ? FinishReason::cancelled : FinishReason::stop;
  };

  // Whether a's consumer has max_queued_tokens undelivered tokens (it then sits out decode steps).
  const auto paused = [&](Active& a) {
    if (options_.max_queued_tokens <= 0) return false;
    std::lock_guard lock(a.mutex);
    return static_cast<int>(a.tokens.size()) >= options_.max_queued_tokens;
  };
  std::vector<std::shared_ptr<Active>> decoding;  // the running requests in this step

  while (!stop.stop_requested()) {
    {
      std::unique_lock lock(mutex_);
      // Read before looking at the queues: a consumer that drains after this read changes it, so
      // the wait below cannot miss the wake-up.
      const std::uint64_t resumed = resumed_;
      lock.unlock();
      const bool all_paused = !running.empty() && std::all_of(running.begin(), running.end(), [&](const auto& a) {
        return paused(*a) && !a->wants_out();
      });
      lock.lock();
      if ((running.empty() || all_paused) && admitting.empty()) {
        // While every running request is paused, a waiting one can only start if a slot is free.
        const bool slot_free = static_cast<int>(running.size()) < backend_->max_sequences();
        const auto gave_up = [&] {
          return std::any_of(waiting_.begin(), waiting_.end(), [](const auto& a) { return a->wants_out(); });
        };
        wake_.wait(lock, stop, [&] {
          return (!waiting_.empty() && slot_free) || (all_paused && resumed_ != resumed) || gave_up();
        });
        if (stop.stop_requested()) break;
      }
      // Requests that gave up while waiting for a slot end now; others take free slots.
      for (auto it = waiting_.begin(); it != waiting_.end();) {
        if ((*it)->wants_out()) {
          finish(**it, end_reason(**it));
          it = waiting_.erase(it);
        } else {
          ++it;
        }
      }
      while (!waiting_.empty()) {
        const SeqId seq = backend_->alloc_sequence();
        if (seq < 0) break;
        waiting_.front()->seq = seq;
        admitting.push_back(std::move(waiting_.front()));
        waiting_.pop_front();
      }
    }
    try {
      // One prompt chunk per iteration, so running streams keep getting tokens during a long prompt.
      if (!admitting.empty()) {
        Active& a = *admitting.front();
        if (a.wants_out()) {
          finish(a, end_reason(a));
          admitting.erase(admitting.begin());
        } else {
          const std::span<const std::int32_t> prompt(a.request.prompt);
          const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(options_.prefill_chunk), prompt.size() - a.prefilled);
          const auto chunk = prompt.subspan(a.prefilled, n);
          a.prefilled += n;
          if (a.prefilled < prompt.size()) {
            backend_->prefill(a.seq, chunk, {});
          } else {
            const SampleSpec spec{a.request.sampling, 0};
            SampledToken sampled;
            if (a.request.top_logprobs >= 0) {
              // Logprobs need the logits on the host; sample_token is the definition a device
              // sampler follows, so the token is the one prefill_sample would have drawn.
              logits.resize(static_cast<std::size_t>(backend_->config().n_vocab));
              backend_->prefill(a.seq, chunk, logits);
              sampled = token_logprobs(logits, sample_token(logits, spec, scratch), a.request.top_logprobs);
            } else {
              sampled.token = backend_->prefill_sample(a.seq, chunk, spec);
            }
            auto moved = std::move(admitting.front());
            admitting.erase(admitting.begin());
            if (deliver(*moved, std::move(sampled))) running.push_back(std::move(moved));
          }
        }
      }
      // Requests whose requester stopped listening or was cancelled leave before the step.
      std::erase_if(running, [&](const std::shared_ptr<Active>& a) {
        if (!a->wants_out()) return false;
        finish(*a, end_reason(*a));
        return true;
      });
      decoding.clear();
      for (const auto& a : running) {
        if (!paused(*a)) decoding.push_back(a);
      }
      if (!decoding.empty()) {
        steps.clear();
        specs.clear();
        for (const auto& a : decoding) {
          steps.push_back({a->seq, a->last});
          specs.push_back({a->request.sampling, static_cast<std::uint64_t>(a->generated)});
        }
        out.resize(steps.size());
        const bool any_logprobs = std::any_of(decoding.begin(), decoding.end(),
                                              [](const auto& a) { return a->request.top_logprobs >= 0; });
        const auto vocab = static_cast<std::size_t>(backend_->config().n_vocab);
        if (any_logprobs) {
          logits.resize(steps.size() * vocab);
          backend_->decode(steps, logits);
          for (std::size_t i = 0; i < steps.size(); ++i) {
            out[i] = sample_token(std::span<const float>(logits).subspan(i * vocab, vocab), specs[i], scratch);
          }
        } else {
          backend_->decode_sample(steps, specs, out);
        }
        for (std::size_t i = 0; i < decoding.size(); ++i) {
          const int top = decoding[i]->request.top_logprobs;
          SampledToken sampled;
          if (top >= 0) {
            sampled = token_logprobs(std::span<const float>(logits).subspan(i * vocab, vocab), out[i], top);
          } else {
            sampled.token = out[i];
          }
          if (!deliver(*decoding[i], std::move(sampled))) std::erase(running, decoding[i]);
        }
      }
    } catch (const std::exception& e) {
      // A backend failure ends every request in flight (their caches may be inconsistent) but
      // not the engine: later requests get fresh sequences.
      log::error(std::string("llm: generation step failed: ") + e.what());
      for (auto& a : running) finish(*a, FinishReason::error, e.what());
      for (auto& a : admitting) finish(*a, FinishReason::error, e.what());
      running.clear();
      admitting.clear();
    }
  }
  for (auto& a : running) finish(*a, FinishReason::error, "the engine stopped");
  for (auto& a : admitting) finish(*a, FinishReason::error, "the engine stopped");
  std::lock_guard lock(mutex_);
  for (auto& a : waiting_) finish(*a, FinishReason::error, "the engine stopped");
  waiting_.clear();
}

}  // namespace podworker::llm

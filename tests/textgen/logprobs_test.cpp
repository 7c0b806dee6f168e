// Logprobs (llm/logprobs.h): a proper log-distribution over the vocabulary, the top alternatives in
// order, and, through the engine, the same tokens as a request without logprobs with top-1 equal to
// the greedy token.
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <thread>
#include <vector>

#include "llm/cpu_backend.h"
#include "llm/engine.h"
#include "llm/logprobs.h"
#include "llm/sampling.h"
#include "test_model_fixture.h"

using namespace podworker;

TEST_CASE("token logprobs sum to one and list the most likely tokens first") {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  // 8,192 logits: every token's logprob is its own pass over the vocabulary, so a full 49,152-token
  // one would make this case quadratic in it (half a minute under the sanitizers).
  std::vector<float> logits(8192);
  for (float& v : logits) v = normal(rng);
  logits[77] = logits[78] = 25.0f;  // a tie at the top: the lower id comes first
  double total = 0;
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(logits.size()); ++i) {
    const llm::SampledToken t = llm::token_logprobs(logits, i, 0);
    CHECK(t.top.empty());
    CHECK(t.logprob <= 0.0f);
    total += std::exp(static_cast<double>(t.logprob));
  }
  CHECK(total == doctest::Approx(1.0).epsilon(1e-5));

  const llm::SampledToken t = llm::token_logprobs(logits, 5, llm::kMaxTopLogprobs);
  REQUIRE(t.top.size() == static_cast<std::size_t>(llm::kMaxTopLogprobs));
  CHECK(t.top[0].token == 77);
  CHECK(t.top[1].token == 78);
  CHECK(t.top[0].token == llm::argmax(logits));
  for (std::size_t i = 1; i < t.top.size(); ++i) CHECK(t.top[i - 1].logprob >= t.top[i].logprob);
  // Every token not listed is no more likely than the last listed one.
  for (std::int32_t i = 0; i < static_cast<std::int32_t>(logits.size()); ++i) {
    bool listed = false;
    for (const auto& e : t.top) listed = listed || e.token == i;
    if (!listed)
      CHECK(logits[static_cast<std::size_t>(i)] <=
            logits[static_cast<std::size_t>(t.top.back().token)]);
  }
  CHECK(t.logprob == llm::token_logprobs(logits, 5, 0).logprob);
  CHECK_THROWS_AS(llm::token_logprobs(logits, -1, 0), std::invalid_argument);
  CHECK_THROWS_AS(llm::token_logprobs(logits, 8192, 0), std::invalid_argument);
  CHECK_THROWS_AS(llm::token_logprobs(logits, 0, 21), std::invalid_argument);
}

TEST_CASE("logprobs change no token, and greedy tokens are their own top-1") {
  const auto weights =
      testing::load_weights(testing::generated_model_path(testing::small_spec(), "q4_1"));
  llm::BackendOptions o;
  o.threads = 2;
  o.max_sequences = 4;
  o.max_context = 128;
  llm::EngineOptions e;
  e.prefill_chunk = 5;
  llm::Engine engine(llm::make_cpu_backend(weights, o), e);
  for (const float temperature : {0.0f, 0.9f}) {
    CAPTURE(temperature);
    llm::GenerationRequest r;
    for (int j = 0; j < 11; ++j) r.prompt.push_back((j * 37) % 300 + 5);
    r.max_tokens = 16;
    r.sampling = {temperature, 0, 1.0f, 1234};
    std::vector<std::int32_t> plain;
    engine.generate(r, [&](std::int32_t t) {
      plain.push_back(t);
      return true;
    });
    r.top_logprobs = 4;
    std::vector<llm::SampledToken> with;
    // Another request decoding alongside without logprobs: the mixed batch samples it on the host.
    llm::GenerationRequest other = r;
    other.top_logprobs = -1;
    std::vector<std::int32_t> other_tokens;
    std::jthread side([&] {
      engine.generate(other, [&](std::int32_t t) {
        other_tokens.push_back(t);
        return true;
      });
    });
    engine.generate_tokens(r, [&](const llm::SampledToken& t) {
      with.push_back(t);
      return true;
    });
    side.join();
    REQUIRE(with.size() == plain.size());
    CHECK(other_tokens == plain);
    for (std::size_t i = 0; i < with.size(); ++i) {
      CAPTURE(i);
      CHECK(with[i].token == plain[i]);
      REQUIRE(with[i].top.size() == 4);
      double mass = 0;
      for (const auto& alt : with[i].top) mass += std::exp(static_cast<double>(alt.logprob));
      CHECK(mass <= 1.0 + 1e-6);
      if (temperature == 0.0f) {
        CHECK(with[i].top[0].token == with[i].token);
        CHECK(with[i].top[0].logprob == with[i].logprob);
      }
    }
  }
  llm::GenerationRequest bad;
  bad.prompt = {1, 2, 3};
  bad.top_logprobs = 21;
  CHECK_THROWS_AS(engine.generate(bad, [](std::int32_t) { return true; }), std::invalid_argument);
}

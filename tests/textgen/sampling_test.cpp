#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "llm/sampling.h"
#include "llm/text_stream.h"

using namespace podworker::llm;

TEST_CASE("greedy sampling is argmax, lowest id on ties") {
  const std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.0f};
  CHECK(sample_token(logits, SampleSpec{}) == 1);
  SampleSpec s;
  s.params.temperature = 0.0f;
  s.params.top_k = 1;
  CHECK(sample_token(logits, s) == 1);
}

TEST_CASE("seeded sampling is reproducible and the step picks the draw") {
  std::vector<float> logits(100);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = std::sin(static_cast<float>(i));
  SampleSpec s;
  s.params = {1.0f, 0, 1.0f, 1234};
  std::vector<std::int32_t> a, b;
  for (std::uint64_t step = 0; step < 50; ++step) {
    s.step = step;
    a.push_back(sample_token(logits, s));
    b.push_back(sample_token(logits, s));
  }
  CHECK(a == b);
  std::map<std::int32_t, int> distinct;
  for (auto t : a) ++distinct[t];
  CHECK(distinct.size() > 5);  // 50 draws over 100 similar logits are not all one token
}

TEST_CASE("top-k and top-p keep exactly the intended candidates") {
  // Probabilities with temperature 1: softmax of log(p) gives p back.
  const std::vector<float> logits = {std::log(0.1f), std::log(0.5f), std::log(0.15f), std::log(0.25f)};
  std::map<std::int32_t, int> seen_k, seen_p;
  for (std::uint64_t step = 0; step < 400; ++step) {
    SampleSpec k{{1.0f, 2, 1.0f, 99}, step};
    ++seen_k[sample_token(logits, k)];
    // top_p 0.7: 0.5 + 0.25 = 0.75 reaches it, so tokens 1 and 3 only.
    SampleSpec p{{1.0f, 0, 0.7f, 99}, step};
    ++seen_p[sample_token(logits, p)];
  }
  CHECK(seen_k.size() == 2);
  CHECK(seen_k.count(1) == 1);
  CHECK(seen_k.count(3) == 1);
  CHECK(seen_p.size() == 2);
  CHECK(seen_p.count(1) == 1);
  CHECK(seen_p.count(3) == 1);
  // Renormalised 0.5 : 0.25 → about two thirds token 1 (400 draws: well inside 0.55..0.78).
  CHECK(seen_p[1] > 220);
  CHECK(seen_p[1] < 312);
  // A tiny top_p keeps the single most likely token.
  CHECK(sample_token(logits, SampleSpec{{1.0f, 0, 0.01f, 5}, 0}) == 1);
}

TEST_CASE("TextStream holds back partial UTF-8 and partial stop strings") {
  TextStream s({"END"});
  CHECK(s.push("caf") == "caf");
  CHECK(s.push("\xC3") == "");  // first byte of é
  CHECK(s.push("\xA9 E") == "\xC3\xA9 ");
  CHECK(s.push("N") == "");     // "EN" may become "END"
  CHECK(s.push("Dx") == "");
  CHECK(s.stopped());
  CHECK(s.text() == "caf\xC3\xA9 ");
  TextStream t({"END"});
  CHECK(t.push("EN") == "");
  CHECK(t.push("O") == "ENO");
  CHECK(t.push("\xE2\x82") == "");
  CHECK(t.finish() == "\xEF\xBF\xBD\xEF\xBF\xBD");  // incomplete tail becomes U+FFFD per byte
  // A four-byte character arriving one byte per token comes out once, whole.
  TextStream u;
  CHECK(u.push("a\xF0") == "a");
  CHECK(u.push("\x9F") == "");
  CHECK(u.push("\x98") == "");
  CHECK(u.push("\x80!") == "\xF0\x9F\x98\x80!");
  // A lead byte that never gets its tail is replaced, not sent raw.
  CHECK(u.push("\xE2x") == "\xEF\xBF\xBDx");
}

TEST_CASE("the fast sampler draws exactly what the reference definition draws") {
  std::mt19937 rng(2024);
  std::normal_distribution<float> dist(0.0f, 3.0f);
  std::vector<std::uint64_t> scratch;
  int checked = 0;
  const auto compare = [&](const std::vector<float>& logits, std::vector<float> temperatures, std::vector<int> top_ks,
                           std::vector<float> top_ps, std::uint64_t seed) {
    for (float temperature : temperatures) {
      for (int top_k : top_ks) {
        for (float top_p : top_ps) {
          for (std::uint64_t step = 0; step < 2; ++step) {
            const SampleSpec s{{temperature, top_k, top_p, seed}, step};
            INFO("n " << logits.size() << " T " << temperature << " top_k " << top_k << " top_p " << top_p);
            CHECK(sample_token(logits, s, scratch) == sample_token_reference(logits, s));
            ++checked;
          }
        }
      }
    }
  };
  // Small vocabularies: every combination, plain and rounded (many ties, so the id tie-break matters).
  for (std::size_t n : {std::size_t{1}, std::size_t{5}, std::size_t{300}}) {
    std::vector<float> logits(n);
    for (int trial = 0; trial < 4; ++trial) {
      for (auto& x : logits) x = trial % 2 ? std::round(dist(rng)) : dist(rng);
      compare(logits, {0.0f, 0.3f, 1.0f, 2.5f}, {0, 1, 7, 100, 1000000}, {1.0f, 0.999f, 0.9f, 0.5f, 0.0f},
              static_cast<std::uint64_t>(trial));
    }
  }
  // SmolLM2's vocabulary size, where the fast path orders only a prefix (the reference sorts it all).
  std::vector<float> logits(49152);
  for (int trial = 0; trial < 2; ++trial) {
    for (auto& x : logits) x = trial % 2 ? std::round(dist(rng)) : dist(rng);
    compare(logits, {0.7f, 1.5f}, {0, 40}, {1.0f, 0.95f, 0.5f}, 9);
  }
  CHECK(checked == 3 * 4 * 4 * 5 * 5 * 2 + 2 * 2 * 2 * 3 * 2);
}

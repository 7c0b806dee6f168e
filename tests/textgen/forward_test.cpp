// The CPU backend against the reference backend (the oracle: kernels/cpu ops, F32 activations), and
// against itself under different batchings.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "llm/backend.h"
#include "llm/cpu_backend.h"
#include "llm/reference_backend.h"
#include "test_model_fixture.h"

using namespace podworker;
using podworker::kernels::GgmlType;

namespace {

// ||a - b|| / ||b||.
double relative_error(std::span<const float> a, std::span<const float> b) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

double max_abs_diff(std::span<const float> a, std::span<const float> b) {
  double m = 0;
  for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(static_cast<double>(a[i]) - b[i]));
  return m;
}

std::vector<std::int32_t> some_tokens(int n, int vocab, unsigned seed) {
  std::mt19937 rng(seed);
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (auto& v : t) v = static_cast<std::int32_t>(rng() % static_cast<unsigned>(vocab));
  return t;
}

std::unique_ptr<llm::Backend> cpu_backend(std::shared_ptr<const llm::LlamaWeights> w, int threads = 2) {
  llm::BackendOptions o;
  o.threads = threads;
  o.max_sequences = 4;
  o.max_context = 128;
  return llm::make_cpu_backend(std::move(w), o);
}

// Logits of every prefix of `tokens` from the backend: prefill the first, then decode one at a time.
std::vector<float> backend_logits(llm::Backend& b, std::span<const std::int32_t> tokens) {
  const auto vocab = static_cast<std::size_t>(b.config().n_vocab);
  std::vector<float> all(tokens.size() * vocab);
  const llm::SeqId s = b.alloc_sequence();
  b.prefill(s, tokens.first(1), std::span(all).first(vocab));
  for (std::size_t i = 1; i < tokens.size(); ++i) {
    const llm::DecodeStep step{s, tokens[i]};
    b.decode(std::span(&step, 1), std::span(all).subspan(i * vocab, vocab));
  }
  b.free_sequence(s);
  return all;
}

void check_against_reference(model::TestModelSpec spec, const std::string& name, double tolerance) {
  const auto weights = testing::load_weights(testing::generated_model_path(spec, name));
  const auto tokens = some_tokens(12, weights->config().n_vocab, 3);
  llm::BackendOptions ro;
  ro.max_sequences = 1;
  ro.max_context = 128;
  auto reference = llm::make_reference_backend(weights, ro);
  // The reference one token per call, so every position's logits come back.
  const auto vocab = static_cast<std::size_t>(weights->config().n_vocab);
  std::vector<float> ref(tokens.size() * vocab);
  {
    const llm::SeqId s = reference->alloc_sequence();
    for (std::size_t i = 0; i < tokens.size(); ++i) {
      reference->prefill(s, std::span(tokens).subspan(i, 1), std::span(ref).subspan(i * vocab, vocab));
    }
  }
  auto backend = cpu_backend(weights);
  const std::vector<float> got = backend_logits(*backend, tokens);
  // With quantized weights the backend quantizes activations to 8 bits per 32 values (as llama.cpp
  // does; each value within 1/254 of its block's largest), so logits differ from the F32 reference
  // by about 1 % (seen: up to 1.1 %): 2 % is the bound. F16 weights take the backend's F32 path,
  // which differs from the reference only in summation order: 1e-3 (seen: below 1e-4). A wrong
  // RoPE or cache offset gives errors near 100 %.
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const auto a = std::span<const float>(got).subspan(t * vocab, vocab);
    const auto b = std::span<const float>(ref).subspan(t * vocab, vocab);
    INFO(name << " position " << t);
    CHECK(relative_error(a, b) < tolerance);
  }
}

}  // namespace

TEST_CASE("cpu forward matches the reference backend: Q4_1 matrices, tied Q8_0 embedding") {
  check_against_reference(testing::small_spec(), "q4_1", 0.02);
}

TEST_CASE("cpu forward matches the reference backend: Q4_0, Q8_0, F16 and an untied output") {
  auto spec = testing::small_spec();
  spec.weight_type = GgmlType::q4_0;
  spec.tied_output = false;
  check_against_reference(spec, "q4_0_untied", 0.02);
  spec.weight_type = GgmlType::q8_0;
  check_against_reference(spec, "q8_0_untied", 0.02);
  spec.weight_type = GgmlType::f16;
  spec.embedding_type = GgmlType::f16;
  check_against_reference(spec, "f16", 1e-3);
}

TEST_CASE("prefill of a whole prompt equals token-by-token decode") {
  const auto weights = testing::load_weights(testing::generated_model_path(testing::small_spec(), "q4_1"));
  const auto tokens = some_tokens(20, weights->config().n_vocab, 5);
  auto backend = cpu_backend(weights);
  const auto vocab = static_cast<std::size_t>(weights->config().n_vocab);
  const std::vector<float> stepwise = backend_logits(*backend, tokens);
  std::vector<float> last(vocab);
  const llm::SeqId s = backend->alloc_sequence();
  backend->prefill(s, tokens, last);
  CHECK(backend->sequence_length(s) == 20);
  CHECK(max_abs_diff(last, std::span<const float>(stepwise).subspan(19 * vocab, vocab)) < 1e-4);
  // Prefill in two chunks, as the engine does for long prompts.
  backend->free_sequence(s);
  const llm::SeqId s2 = backend->alloc_sequence();
  std::vector<float> chunked(vocab);
  backend->prefill(s2, std::span(tokens).first(7), {});
  backend->prefill(s2, std::span(tokens).subspan(7), chunked);
  CHECK(max_abs_diff(chunked, last) < 1e-4);
}

TEST_CASE("a batched decode step equals each sequence decoded alone") {
  const auto weights = testing::load_weights(testing::generated_model_path(testing::small_spec(), "q4_1"));
  const auto vocab = static_cast<std::size_t>(weights->config().n_vocab);
  auto backend = cpu_backend(weights);
  // Three sequences at different positions.
  std::vector<std::vector<std::int32_t>> prompts = {some_tokens(3, static_cast<int>(vocab), 1),
                                                    some_tokens(9, static_cast<int>(vocab), 2),
                                                    some_tokens(5, static_cast<int>(vocab), 4)};
  const std::vector<std::int32_t> next = {11, 22, 33};
  std::vector<float> alone(3 * vocab);
  for (std::size_t i = 0; i < 3; ++i) {
    const llm::SeqId s = backend->alloc_sequence();
    backend->prefill(s, prompts[i], {});
    const llm::DecodeStep step{s, next[i]};
    backend->decode(std::span(&step, 1), std::span(alone).subspan(i * vocab, vocab));
    backend->free_sequence(s);
  }
  std::vector<llm::DecodeStep> steps;
  for (std::size_t i = 0; i < 3; ++i) {
    const llm::SeqId s = backend->alloc_sequence();
    backend->prefill(s, prompts[i], {});
    steps.push_back({s, next[i]});
  }
  std::vector<float> batched(3 * vocab);
  backend->decode(steps, batched);
  CHECK(max_abs_diff(batched, alone) < 1e-4);
  for (const auto& st : steps) backend->free_sequence(st.seq);
}

TEST_CASE("one thread and two threads give the same logits") {
  const auto weights = testing::load_weights(testing::generated_model_path(testing::small_spec(), "q4_1"));
  const auto tokens = some_tokens(8, weights->config().n_vocab, 9);
  auto one = cpu_backend(weights, 1);
  auto two = cpu_backend(weights, 2);
  CHECK(max_abs_diff(backend_logits(*one, tokens), backend_logits(*two, tokens)) == 0.0);
}

TEST_CASE("backend rejects bad calls with clear errors") {
  const auto weights = testing::load_weights(testing::generated_model_path(testing::small_spec(), "q4_1"));
  auto backend = cpu_backend(weights);
  const std::vector<std::int32_t> bad = {weights->config().n_vocab};
  CHECK_THROWS_AS(backend->prefill(0, bad, {}), std::invalid_argument);  // slot 0 not allocated
  const llm::SeqId s = backend->alloc_sequence();
  CHECK_THROWS_AS(backend->prefill(s, bad, {}), std::invalid_argument);
  const std::vector<std::int32_t> too_long(200, 1);
  CHECK_THROWS_AS(backend->prefill(s, too_long, {}), std::invalid_argument);
  for (int i = 1; i < backend->max_sequences(); ++i) CHECK(backend->alloc_sequence() >= 0);
  CHECK(backend->alloc_sequence() == -1);
}

TEST_CASE("cpu forward matches the reference backend: Q4_K, Q5_K, Q6_K and Q5_0 matrices") {
  auto spec = testing::small_spec();
  spec.hidden = 256;  // K-quant rows hold whole 256-element super-blocks
  spec.ffn = 512;
  for (const GgmlType t : {GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k, GgmlType::q5_0}) {
    spec.weight_type = t;
    check_against_reference(spec, "kquant_" + std::string(kernels::type_name(t)), 0.02);
  }
}

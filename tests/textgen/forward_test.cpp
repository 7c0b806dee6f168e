// The CPU backend against the naive f32 reference, and against itself under different batchings.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/dequantize.h"
#include "llm/backend.h"
#include "llm/cpu/matmul.h"
#include "llm/cpu_backend.h"
#include "naive_reference.h"
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

void check_against_reference(model::TestModelSpec spec, const std::string& name) {
  const auto weights = testing::load_weights(testing::generated_model_path(spec, name));
  const auto tokens = some_tokens(12, weights->config().n_vocab, 3);
  const std::vector<float> ref = testing::naive_forward(*weights, tokens);
  auto backend = cpu_backend(weights);
  const std::vector<float> got = backend_logits(*backend, tokens);
  // Activations are quantized to 8 bits per 32 values (as llama.cpp does), so logits differ from
  // the f32 reference by about 1 %; 4 % leaves margin without hiding real errors (a wrong RoPE
  // or cache offset gives errors near 100 %).
  const auto vocab = static_cast<std::size_t>(weights->config().n_vocab);
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    const auto a = std::span<const float>(got).subspan(t * vocab, vocab);
    const auto b = std::span<const float>(ref).subspan(t * vocab, vocab);
    INFO(name << " position " << t);
    CHECK(relative_error(a, b) < 0.04);
  }
}

}  // namespace

TEST_CASE("cpu forward matches the naive f32 reference: Q4_1 matrices, tied Q8_0 embedding") {
  check_against_reference(testing::small_spec(), "q4_1");
}

TEST_CASE("cpu forward matches the naive f32 reference: Q4_0, Q8_0, F16 and an untied output") {
  auto spec = testing::small_spec();
  spec.weight_type = GgmlType::q4_0;
  spec.tied_output = false;
  check_against_reference(spec, "q4_0_untied");
  spec.weight_type = GgmlType::q8_0;
  check_against_reference(spec, "q8_0_untied");
  spec.weight_type = GgmlType::f16;
  spec.embedding_type = GgmlType::f16;
  check_against_reference(spec, "f16");
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

TEST_CASE("SIMD matmul kernels match the scalar kernels") {
  using namespace podworker::llm::cpu;
  std::mt19937 rng(42);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int cols = 256, rows = 7, ncols = 6, nb = cols / 32;
  std::vector<float> wf(static_cast<std::size_t>(rows * cols)), xf(static_cast<std::size_t>(ncols * cols));
  for (auto& v : wf) v = dist(rng);
  for (auto& v : xf) v = dist(rng);
  const CpuKernels scalar = scalar_kernels();
  std::vector<CpuKernels> sets;
  if (cpu_supports_avx2() && avx2_kernels().q4_1) sets.push_back(avx2_kernels());
  if (cpu_supports_avx512() && avx512_kernels().q4_1) sets.push_back(avx512_kernels());
  if (sets.empty()) MESSAGE("no SIMD kernel set runs on this CPU; only the scalar one is tested");
  std::vector<ActBlock> acts(static_cast<std::size_t>(ncols * nb));
  for (int c = 0; c < ncols; ++c) scalar.quantize(xf.data() + c * cols, acts.data() + c * nb, cols);
  for (const CpuKernels& k : sets) {
    std::vector<ActBlock> acts2(acts.size());
    for (int c = 0; c < ncols; ++c) k.quantize(xf.data() + c * cols, acts2.data() + c * nb, cols);
    CHECK(std::memcmp(acts.data(), acts2.data(), acts.size() * sizeof(ActBlock)) == 0);
  }
  for (GgmlType type : {GgmlType::q4_0, GgmlType::q4_1, GgmlType::q8_0}) {
    const std::size_t row_bytes = kernels::tensor_bytes(type, cols);
    std::vector<std::byte> w(row_bytes * rows);
    for (int r = 0; r < rows; ++r) kernels::cpu::quantize(type, wf.data() + r * cols, w.data() + r * row_bytes, cols);
    const auto pick = [&](const CpuKernels& k) {
      return type == GgmlType::q4_0 ? k.q4_0 : type == GgmlType::q4_1 ? k.q4_1 : k.q8_0;
    };
    std::vector<float> expect(static_cast<std::size_t>(rows * ncols));
    pick(scalar)(w.data(), row_bytes, nb, 0, rows, acts.data(), ncols, expect.data(), rows);
    // The scalar kernel against a dequantized dot product.
    std::vector<float> wd(static_cast<std::size_t>(cols)), xd(static_cast<std::size_t>(cols));
    kernels::cpu::dequantize(type, w.data() + 2 * row_bytes, wd.data(), cols);
    double dot = 0;
    for (int e = 0; e < cols; ++e) dot += static_cast<double>(wd[static_cast<std::size_t>(e)]) * xf[static_cast<std::size_t>(3 * cols + e)];
    CHECK(std::fabs(expect[static_cast<std::size_t>(3 * rows + 2)] - dot) < 0.02 * std::sqrt(static_cast<double>(cols)));
    for (const CpuKernels& k : sets) {
      std::vector<float> got(expect.size());
      pick(k)(w.data(), row_bytes, nb, 0, rows, acts.data(), ncols, got.data(), rows);
      INFO(k.name << " " << kernels::type_name(type));
      CHECK(max_abs_diff(got, expect) < 1e-3);
    }
  }
}

TEST_CASE("SIMD attention matches the scalar attention") {
  using namespace podworker::llm::cpu;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<CpuKernels> sets;
  if (cpu_supports_avx2() && avx2_kernels().attend) sets.push_back(avx2_kernels());
  if (cpu_supports_avx512() && avx512_kernels().attend) sets.push_back(avx512_kernels());
  if (sets.empty()) MESSAGE("no SIMD kernel set runs on this CPU; only the scalar one is tested");
  // Head sizes with and without 8- and 32-float tails; lengths with and without an 8-position tail.
  for (int head_dim : {64, 40, 12, 3}) {
    for (int len : {1, 7, 33}) {
      const std::size_t stride = static_cast<std::size_t>(head_dim) * 3 + 5;
      std::vector<float> q(static_cast<std::size_t>(head_dim)), k(stride * static_cast<std::size_t>(len)),
          v(k.size());
      for (auto& x : q) x = dist(rng);
      for (auto& x : k) x = dist(rng);
      for (auto& x : v) x = dist(rng);
      std::vector<float> scores(static_cast<std::size_t>(len)), expect(q.size());
      scalar_kernels().attend(q.data(), k.data(), v.data(), len, stride, head_dim, 0.125f, scores.data(), expect.data());
      // The scalar version against a direct softmax in double precision.
      std::vector<double> w(static_cast<std::size_t>(len));
      double mx = -1e30, total = 0;
      for (int p = 0; p < len; ++p) {
        double dot = 0;
        for (int e = 0; e < head_dim; ++e) dot += static_cast<double>(q[static_cast<std::size_t>(e)]) * k[static_cast<std::size_t>(p) * stride + static_cast<std::size_t>(e)];
        w[static_cast<std::size_t>(p)] = dot * 0.125;
        mx = std::max(mx, w[static_cast<std::size_t>(p)]);
      }
      for (auto& x : w) total += (x = std::exp(x - mx));
      double o0 = 0;
      for (int p = 0; p < len; ++p) o0 += w[static_cast<std::size_t>(p)] / total * v[static_cast<std::size_t>(p) * stride];
      INFO("head_dim " << head_dim << " len " << len);
      CHECK(std::fabs(expect[0] - o0) < 1e-4);
      for (const CpuKernels& set : sets) {
        std::vector<float> got(q.size());
        set.attend(q.data(), k.data(), v.data(), len, stride, head_dim, 0.125f, scores.data(), got.data());
        INFO(set.name);
        CHECK(max_abs_diff(got, expect) < 1e-4);
      }
    }
  }
}

TEST_CASE("cpu forward matches the naive f32 reference: Q4_K, Q5_K, Q6_K and Q5_0 matrices") {
  auto spec = testing::small_spec();
  spec.hidden = 256;  // K-quant rows hold whole 256-element super-blocks
  spec.ffn = 512;
  for (const GgmlType t : {GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k, GgmlType::q5_0}) {
    spec.weight_type = t;
    check_against_reference(spec, "kquant_" + std::string(kernels::type_name(t)));
  }
}

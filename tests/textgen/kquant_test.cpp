// The CPU backend's K-quant and Q5_0 products (llm/cpu/matmul_kquant.h) against the f32 dot of the
// dequantized weights with the dequantized activations, and the real SmolLM2 file requantized to
// the Q4_K_M mix answering the pinned prompt.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <vector>

#include "kernels/dequantize.h"
#include "llm/cpu/matmul.h"
#include "llm/cpu/matmul_kquant.h"
#include "llm/generator.h"
#include "model/quantize.h"
#include "model/tokenizer.h"

using namespace podworker;
using kernels::GgmlType;

TEST_CASE("K-quant and Q5_0 matmuls equal the dot of the dequantized rows") {
  constexpr int kCols = 512, kRows = 24, kBatch = 3;
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> w(static_cast<std::size_t>(kCols) * kRows),
      x(static_cast<std::size_t>(kCols) * kBatch);
  for (float& v : w) v = normal(rng) * 0.05f;
  for (float& v : x) v = normal(rng);
  const llm::cpu::CpuKernels scalar = llm::cpu::scalar_kernels();
  std::vector<llm::cpu::ActBlock> acts(static_cast<std::size_t>(kCols / 32) * kBatch);
  for (int c = 0; c < kBatch; ++c) {
    scalar.quantize(x.data() + c * kCols, acts.data() + c * (kCols / 32), kCols);
  }
  // The activations as the products see them (8-bit), so only summation order separates the two.
  std::vector<float> xq(x.size());
  for (std::size_t b = 0; b < acts.size(); ++b) {
    for (int l = 0; l < 32; ++l)
      xq[b * 32 + static_cast<std::size_t>(l)] = acts[b].d * acts[b].qs[l];
  }
  for (const GgmlType t : {GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k, GgmlType::q5_0}) {
    CAPTURE(kernels::type_name(t));
    REQUIRE(llm::cpu::is_kquant_matmul_type(t));
    const std::size_t row_bytes = kernels::tensor_bytes(t, kCols);
    std::vector<std::byte> q(row_bytes * kRows);
    kernels::cpu::quantize(t, w.data(), q.data(), static_cast<std::int64_t>(w.size()));
    std::vector<float> out(static_cast<std::size_t>(kRows) * kBatch, NAN);
    // Two calls over row ranges, as the thread split makes them.
    llm::cpu::matmul_kquant_scalar(t, q.data(), row_bytes, kCols / 32, 0, 10, acts.data(), kBatch,
                                   out.data(), kRows);
    llm::cpu::matmul_kquant_scalar(t, q.data(), row_bytes, kCols / 32, 10, kRows, acts.data(),
                                   kBatch, out.data(), kRows);
    // The AVX2 version equals the portable one up to the order of the f32 additions, at every
    // column count (1..4 per pass, and 5 = a pass of 4 and one of 1).
    if (llm::cpu::kquant_avx2_compiled() && llm::cpu::cpu_supports_avx2()) {
      for (const int cols : {1, 2, 3, 4, 5}) {
        CAPTURE(cols);
        std::vector<llm::cpu::ActBlock> more(static_cast<std::size_t>(kCols / 32) * cols);
        for (std::size_t i = 0; i < more.size(); ++i) more[i] = acts[i % acts.size()];
        std::vector<float> ref(static_cast<std::size_t>(kRows) * cols), simd(ref.size(), NAN);
        llm::cpu::matmul_kquant_scalar(t, q.data(), row_bytes, kCols / 32, 0, kRows, more.data(),
                                       cols, ref.data(), kRows);
        llm::cpu::matmul_kquant_avx2(t, q.data(), row_bytes, kCols / 32, 0, kRows, more.data(),
                                     cols, simd.data(), kRows);
        for (std::size_t i = 0; i < ref.size(); ++i) {
          CHECK(simd[i] == doctest::Approx(ref[i]).epsilon(1e-5).scale(1.0));
        }
      }
    } else {
      MESSAGE("no AVX2: the SIMD K-quant products are not compared");
    }
    std::vector<float> row(kCols);
    for (int r = 0; r < kRows; ++r) {
      kernels::cpu::dequantize(t, q.data() + static_cast<std::size_t>(r) * row_bytes, row.data(),
                               kCols);
      for (int c = 0; c < kBatch; ++c) {
        double ref = 0, mag = 0;
        for (int e = 0; e < kCols; ++e) {
          ref += static_cast<double>(row[static_cast<std::size_t>(e)]) *
                 xq[static_cast<std::size_t>(c * kCols + e)];
          mag += std::fabs(static_cast<double>(row[static_cast<std::size_t>(e)]) *
                           xq[static_cast<std::size_t>(c * kCols + e)]);
        }
        CHECK(std::fabs(out[static_cast<std::size_t>(c * kRows + r)] - ref) <= 1e-5 * mag + 1e-6);
      }
    }
  }
}

TEST_CASE("real model: the Q4_K_M requantization answers the pinned prompt") {
  const std::string path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::string found;
  for (const char* prefix : {"", "../", "../../", "../../../"}) {
    if (std::filesystem::exists(std::string(prefix) + path)) found = std::string(prefix) + path;
  }
  if (const char* env = std::getenv("PODWORKER_MODEL"); env && std::filesystem::exists(env))
    found = env;
  if (found.empty()) {
    MESSAGE("skipped: " << path << " is absent (scripts/fetch-model.sh downloads it)");
    return;
  }
  const std::filesystem::path out =
      std::filesystem::temp_directory_path() / "podworker-test-smollm2-q4_k_m.gguf";
  model::requantize(model::GgufFile::open(found), model::parse_quantize_target("Q4_K_M"), 2)
      .write(out.string());
  llm::BackendOptions o;
  o.threads = 2;
  o.max_sequences = 1;
  o.max_context = 256;
  auto g = llm::Generator::load(out.string(), llm::BackendKind::cpu, o);
  const std::vector<model::Tokenizer::Message> msgs = {{"user", "What is the capital of France?"}};
  llm::TextRequest r;
  r.prompt = g->tokenizer().encode(model::Tokenizer::apply_chat_template(msgs));
  r.max_tokens = 24;
  const llm::TextResult res = g->generate_text(r, {});
  MESSAGE("generated: " << res.text);
  CHECK(res.text.find("Paris") != std::string::npos);
  std::filesystem::remove(out);
}

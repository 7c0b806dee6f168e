// The quantizers (kernels/cpu/kquant.cpp and friends) and the requantizer (model/quantize.h): each
// type's quantize -> dequantize error stays within its bound, and the Q4_K_M mix gives each tensor
// the type llama.cpp gives it. Bit-exactness against gguf-py is scripts/check_quants.py.
#include <doctest/doctest.h>

#include <cmath>
#include <map>
#include <random>
#include <vector>

#include "kernels/kquant.h"
#include "kernels/dequantize.h"
#include "model/quantize.h"
#include "model/test_model.h"
#include "test_files.h"

using namespace podworker::model;
using podworker::kernels::GgmlType;

namespace {

// Root-mean-square error relative to the data's RMS after one quantize -> dequantize round trip.
double relative_rms_error(GgmlType type, const std::vector<float>& x) {
  std::vector<std::byte> q(
      podworker::kernels::tensor_bytes(type, static_cast<std::int64_t>(x.size())));
  podworker::kernels::cpu::quantize(type, x.data(), q.data(), static_cast<std::int64_t>(x.size()));
  std::vector<float> y(x.size());
  podworker::kernels::cpu::dequantize(type, q.data(), y.data(),
                                      static_cast<std::int64_t>(x.size()));
  double err = 0, ref = 0;
  for (std::size_t i = 0; i < x.size(); ++i) {
    err += (x[i] - y[i]) * static_cast<double>(x[i] - y[i]);
    ref += x[i] * static_cast<double>(x[i]);
  }
  return std::sqrt(err / ref);
}

}  // namespace

TEST_CASE("quantize then dequantize stays within each type's error bound") {
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> x(256 * 64);
  for (float& v : x) v = normal(rng) * 0.02f;  // the scale of real weight matrices
  // A b-bit grid over a block's range r has step r / (2^b - 1) and RMS error step / sqrt(12). For
  // Gaussian blocks of 32 the range is about 4.5 sigma (2 x the expected maximum |x| of 2.2 sigma
  // for 32 draws; the symmetric types use 2 x max |x| too), so the bound is 4.5 / (2^b - 1) /
  // sqrt(12) of the RMS with headroom for the coarser f16 / 6-bit scales: 4 bits 0.10, 5 bits 0.05,
  // 6 bits 0.025, 8 bits 0.006. The searched K-quant scales do better than the plain grid.
  struct Case {
    GgmlType type;
    double bound;
  };
  for (const Case c :
       {Case{GgmlType::q4_0, 0.10}, Case{GgmlType::q4_1, 0.10}, Case{GgmlType::q4_k, 0.10},
        Case{GgmlType::q5_0, 0.05}, Case{GgmlType::q5_k, 0.05}, Case{GgmlType::q6_k, 0.025},
        Case{GgmlType::q8_0, 0.006}}) {
    const double e = relative_rms_error(c.type, x);
    INFO(podworker::kernels::type_name(c.type), " relative RMS error ", e);
    CHECK(e < c.bound);
    CHECK(e > c.bound / 10);  // a round trip that loses nothing would mean nothing was quantized
  }
  // The searched scales beat the plain min/max grid of the same width.
  CHECK(relative_rms_error(GgmlType::q4_k, x) < relative_rms_error(GgmlType::q4_1, x));
}

TEST_CASE(
    "the searched Q5_0 scale never loses to the reference scale, and recovers a coarser grid") {
  namespace kq = podworker::kernels::cpu::kquant;
  using podworker::kernels::BlockQ5_0;
  // Squared error of each block of 32 after a round trip through one of the Q5_0 quantizers.
  auto block_errors = [](const std::vector<float>& x, bool search) {
    const std::int64_t nb = static_cast<std::int64_t>(x.size()) / 32;
    std::vector<BlockQ5_0> q(static_cast<std::size_t>(nb));
    if (search) {
      kq::quantize_q5_0_search(x.data(), q.data(), nb);
    } else {
      kq::quantize_q5_0(x.data(), q.data(), nb);
    }
    std::vector<float> y(x.size());
    kq::dequantize_q5_0(q.data(), y.data(), nb);
    std::vector<double> e(static_cast<std::size_t>(nb), 0.0);
    for (std::size_t i = 0; i < x.size(); ++i) e[i / 32] += (x[i] - y[i]) * double(x[i] - y[i]);
    return e;
  };
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 0.02f);
  std::vector<float> gauss(32 * 512);
  for (float& v : gauss) v = normal(rng);
  // Data already on a Q4_1 grid (what requantizing the SmolLM2 file sees).
  std::vector<float> on_q4_1(gauss.size());
  std::vector<std::byte> q41(podworker::kernels::tensor_bytes(GgmlType::q4_1, 32 * 512));
  podworker::kernels::cpu::quantize(GgmlType::q4_1, gauss.data(), q41.data(), 32 * 512);
  podworker::kernels::cpu::dequantize(GgmlType::q4_1, q41.data(), on_q4_1.data(), 32 * 512);
  for (const auto* x : {&gauss, &on_q4_1}) {
    const std::vector<double> ref = block_errors(*x, false);
    const std::vector<double> got = block_errors(*x, true);
    double sum_ref = 0, sum_got = 0;
    int worse = 0;
    for (std::size_t b = 0; b < ref.size(); ++b) {
      sum_ref += ref[b];
      sum_got += got[b];
      // The reference's levels are one of the candidates; only the fp16 rounding of the refit
      // scale can cost the search anything, and then a hair.
      if (got[b] > ref[b] * 1.01 + 1e-12) ++worse;
    }
    INFO("total squared error: reference ", sum_ref, ", searched ", sum_got);
    CHECK(worse == 0);
    CHECK(sum_got < 0.9 * sum_ref);
  }
  // Zero and constant blocks stay exact.
  std::vector<float> flat(64, 0.0f);
  std::fill(flat.begin() + 32, flat.end(), -0.25f);
  for (double e : block_errors(flat, true)) CHECK(e == 0.0);
}

TEST_CASE("K-quants of constant and zero blocks are exact") {
  for (GgmlType t : {GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k, GgmlType::q5_0}) {
    std::vector<float> zero(256, 0.0f);
    CHECK(relative_rms_error(t, std::vector<float>(256, 1.0f)) < 0.01);
    std::vector<std::byte> q(podworker::kernels::tensor_bytes(t, 256));
    podworker::kernels::cpu::quantize(t, zero.data(), q.data(), 256);
    std::vector<float> y(256, 1.0f);
    podworker::kernels::cpu::dequantize(t, q.data(), y.data(), 256);
    for (float v : y) CHECK(v == 0.0f);
  }
}

TEST_CASE("the Q4_K_M mix gives each tensor llama.cpp's type") {
  TestModelSpec spec;
  spec.hidden = 256;
  spec.ffn = 512;
  spec.layers = 8;
  spec.heads = 4;
  spec.kv_heads = 4;
  testing::TempFile file;
  write_test_model(file.path(), spec);
  const GgufFile in = GgufFile::open(file.path());
  const QuantizeTarget target = parse_quantize_target("Q4_K_M");
  std::map<std::string, GgmlType> got;
  for (const TensorChoice& c : plan_quantization(in, target)) got[c.name] = c.to;
  CHECK(got["token_embd.weight"] == GgmlType::q6_k);  // tied: it is the LM head
  CHECK(got["output_norm.weight"] == GgmlType::f32);
  // use_more_bits(i, 8): the first and last eighth and every third from n/8 on: layers 0, 3, 6, 7.
  for (int i = 0; i < 8; ++i) {
    const std::string p = "blk." + std::to_string(i) + ".";
    const GgmlType more = (i == 0 || i == 3 || i == 6 || i == 7) ? GgmlType::q6_k : GgmlType::q4_k;
    CAPTURE(i);
    CHECK(got[p + "attn_v.weight"] == more);
    CHECK(got[p + "ffn_down.weight"] == more);
    CHECK(got[p + "attn_q.weight"] == GgmlType::q4_k);
    CHECK(got[p + "ffn_up.weight"] == GgmlType::q4_k);
    CHECK(got[p + "attn_norm.weight"] == GgmlType::f32);
  }

  // Rows of 64 hold no 256-element super-block: Q4_K falls back to Q5_0 and Q6_K to Q8_0
  // (llama.cpp's types) -- except that a Q4_1 / Q8_0 source, no larger than the fallback, keeps its
  // type.
  testing::TempFile small, small_f32;
  write_test_model(small.path(), TestModelSpec{});  // Q4_1 matrices, Q8_0 embedding
  TestModelSpec f32_spec;
  f32_spec.weight_type = GgmlType::f32;
  f32_spec.embedding_type = GgmlType::f32;
  write_test_model(small_f32.path(), f32_spec);
  const GgufFile in_small = GgufFile::open(small.path());
  const GgufFile in_small_f32 = GgufFile::open(small_f32.path());
  QuantizeTarget llama_types = target;
  llama_types.keep_source_fallback = false;
  struct Want {
    const GgufFile* file;
    const QuantizeTarget* target;
    GgmlType embd, attn_q;
  };
  for (const Want w : {Want{&in_small, &target, GgmlType::q8_0, GgmlType::q4_1},
                       Want{&in_small, &llama_types, GgmlType::q8_0, GgmlType::q5_0},
                       Want{&in_small_f32, &target, GgmlType::q8_0, GgmlType::q5_0},
                       Want{&in_small_f32, &llama_types, GgmlType::q8_0, GgmlType::q5_0}}) {
    CAPTURE(w.target->keep_source_fallback);
    for (const TensorChoice& c : plan_quantization(*w.file, *w.target)) {
      if (c.name == "token_embd.weight") CHECK(c.to == w.embd);
      if (c.name == "blk.0.attn_q.weight") CHECK(c.to == w.attn_q);
    }
  }
  CHECK_THROWS_AS(parse_quantize_target("Q3_K"), std::invalid_argument);
}

TEST_CASE("a requantized model reads back with its weights close to the original") {
  TestModelSpec spec;
  spec.hidden = 256;
  spec.ffn = 512;
  spec.weight_type = GgmlType::f32;
  spec.embedding_type = GgmlType::f32;
  testing::TempFile file, out_file;
  write_test_model(file.path(), spec);
  const GgufFile in = GgufFile::open(file.path());
  requantize(in, parse_quantize_target("Q4_K_M"), 2).write(out_file.path());
  const GgufFile out = GgufFile::open(out_file.path());
  CHECK(out.get_int("general.file_type") == 15);
  CHECK(out.get_string("general.architecture") == "llama");
  REQUIRE(out.tensors().size() == in.tensors().size());
  for (std::size_t i = 0; i < in.tensors().size(); ++i) {
    const TensorInfo& a = in.tensors()[i];
    const TensorInfo& b = out.tensors()[i];
    CAPTURE(a.name);
    CHECK(a.name == b.name);
    CHECK(a.shape == b.shape);
    std::vector<float> x(static_cast<std::size_t>(a.elements())), y(x.size());
    podworker::kernels::cpu::dequantize(a.type, a.data, x.data(), a.elements());
    podworker::kernels::cpu::dequantize(b.type, b.data, y.data(), b.elements());
    double err = 0, ref = 0;
    for (std::size_t e = 0; e < x.size(); ++e) {
      err += (x[e] - y[e]) * static_cast<double>(x[e] - y[e]);
      ref += x[e] * static_cast<double>(x[e]);
    }
    CHECK(std::sqrt(err / ref) < (b.type == GgmlType::f32 ? 1e-9 : 0.10));
  }
}

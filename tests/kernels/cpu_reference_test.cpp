// The CPU references against values worked out by hand (in the comments). These references are what the
// CUDA kernels are held to, so they get the simplest possible checks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>
#include <vector>

#include "kernels/add.h"
#include "kernels/attention.h"
#include "kernels/dequantize.h"
#include "kernels/device.h"
#include "kernels/get_rows.h"
#include "kernels/matvec.h"
#include "kernels/philox.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"
#include "kernels/softmax.h"
#include "kernels/swiglu.h"

namespace k = podworker::kernels;
using doctest::Approx;

TEST_CASE("half conversions are exact on representative values") {
  CHECK(k::fp16_to_fp32(0x3c00) == 1.0f);
  CHECK(k::fp16_to_fp32(0x3800) == 0.5f);
  CHECK(k::fp16_to_fp32(0xc000) == -2.0f);
  CHECK(k::fp16_to_fp32(0x7bff) == 65504.0f);                  // largest finite half
  CHECK(k::fp16_to_fp32(0x0001) == std::ldexp(1.0f, -24));     // smallest subnormal
  CHECK(std::isinf(k::fp16_to_fp32(0x7c00)));
  CHECK(k::fp32_to_fp16(1.0f) == 0x3c00);
  CHECK(k::fp32_to_fp16(0.1f) == 0x2e66);                       // 0.0999755859375, nearest half
  CHECK(k::fp32_to_fp16(std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(k::fp32_to_fp16(70000.0f) == 0x7c00);                   // overflows to inf
  CHECK(k::fp32_to_fp16(-0.0f) == 0x8000);
  // Round trip of every finite half.
  for (std::uint32_t h = 0; h < 0x7c00; ++h) {
    REQUIRE(k::fp32_to_fp16(k::fp16_to_fp32(static_cast<k::half_bits>(h))) == h);
  }
  CHECK(k::fp32_to_bf16(1.0f) == 0x3f80);
  CHECK(k::bf16_to_fp32(0x4049) == 3.140625f);
}

TEST_CASE("dequantize Q4_0, Q4_1, Q8_0 and Q6_K blocks by hand") {
  // Q4_0: d = 0.5, qs[0] = 0x1F: element 0 = 0.5 * (15 - 8) = 3.5, element 16 = 0.5 * (1 - 8) = -3.5;
  // every other nibble is 8, i.e. 0.
  k::BlockQ4_0 q40{};
  q40.d = 0x3800;
  std::memset(q40.qs, 0x88, sizeof q40.qs);
  q40.qs[0] = 0x1F;
  std::vector<float> out(32);
  k::cpu::dequantize(k::GgmlType::q4_0, &q40, out.data(), 32);
  CHECK(out[0] == 3.5f);
  CHECK(out[16] == -3.5f);
  CHECK(out[1] == 0.0f);

  // Q4_1: d = 0.5, m = -1, qs[0] = 0x1F: element 0 = 0.5 * 15 - 1 = 6.5, element 16 = 0.5 * 1 - 1 = -0.5,
  // zero nibbles give m = -1.
  k::BlockQ4_1 q41{};
  q41.d = 0x3800;
  q41.m = 0xbc00;
  q41.qs[0] = 0x1F;
  k::cpu::dequantize(k::GgmlType::q4_1, &q41, out.data(), 32);
  CHECK(out[0] == 6.5f);
  CHECK(out[16] == -0.5f);
  CHECK(out[5] == -1.0f);

  // Q8_0: d = 0.25, qs[3] = -4: element 3 = -1.
  k::BlockQ8_0 q80{};
  q80.d = 0x3400;
  q80.qs[3] = -4;
  k::cpu::dequantize(k::GgmlType::q8_0, &q80, out.data(), 32);
  CHECK(out[3] == -1.0f);
  CHECK(out[0] == 0.0f);

  // Q6_K: d = 1, all scales 2, ql[0] = 0x21, qh[0] = 0xE4 (2-bit fields from bit 0: 0, 1, 2, 3).
  //   y[0]  = 2 * ((0x1 | 0 << 4) - 32) = -62
  //   y[32] = 2 * ((0x0 | 1 << 4) - 32) = -32    (ql[32] = 0)
  //   y[64] = 2 * ((0x2 | 2 << 4) - 32) = 4
  //   y[96] = 2 * ((0x0 | 3 << 4) - 32) = 32
  //   everything else: 2 * (0 - 32) = -64
  k::BlockQ6_K q6{};
  q6.d = 0x3c00;
  std::memset(q6.scales, 2, sizeof q6.scales);
  q6.ql[0] = 0x21;
  q6.qh[0] = 0xE4;
  std::vector<float> big(256);
  k::cpu::dequantize(k::GgmlType::q6_k, &q6, big.data(), 256);
  CHECK(big[0] == -62.0f);
  CHECK(big[32] == -32.0f);
  CHECK(big[64] == 4.0f);
  CHECK(big[96] == 32.0f);
  CHECK(big[1] == -64.0f);
  CHECK(big[255] == -64.0f);

  CHECK_THROWS_AS(k::cpu::dequantize(k::GgmlType::q8_0, &q80, out.data(), 31), std::invalid_argument);
}

TEST_CASE("quantize then dequantize stays within half a step") {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i - 20) * 0.37f;
  for (auto type : {k::GgmlType::q4_0, k::GgmlType::q4_1, k::GgmlType::q8_0, k::GgmlType::f16}) {
    std::vector<std::byte> q(k::tensor_bytes(type, 64));
    k::cpu::quantize(type, x.data(), q.data(), 64);
    std::vector<float> back(64);
    k::cpu::dequantize(type, q.data(), back.data(), 64);
    // Block ranges are at most 31 * 0.37 = 11.5 (|x| <= 16): a 4-bit step is <= 16/8 = 2 (Q4_0),
    // 11.5/15 (Q4_1); 8-bit 16/127.
    const float tol = type == k::GgmlType::q4_0 ? 1.01f : type == k::GgmlType::q4_1 ? 0.4f : 0.07f;
    for (int i = 0; i < 64; ++i) CHECK(std::fabs(back[i] - x[i]) <= tol);
  }
  // Q8_1 stores s = d * sum(q).
  std::vector<k::BlockQ8_1> q81(2);
  k::cpu::quantize(k::GgmlType::q8_1, x.data(), q81.data(), 64);
  int sum = 0;
  for (int j = 0; j < 32; ++j) sum += q81[0].qs[j];
  CHECK(k::fp16_to_fp32(q81[0].s) == Approx(k::fp16_to_fp32(q81[0].d) * sum).epsilon(1e-3));
}

TEST_CASE("matvec on Q8_0 weights by hand") {
  // Row 0: all q = 1 with d = 0.5 -> weights 0.5; row 1: q = 2 -> 1.0. x = 1..32, sum(x) = 528.
  // y0 = 0.5 * 528 = 264, y1 = 528; batch row 2 uses x = 1 everywhere: 16 and 32.
  std::vector<k::BlockQ8_0> w(2);
  w[0].d = 0x3800;
  w[1].d = 0x3800;
  for (int j = 0; j < 32; ++j) {
    w[0].qs[j] = 1;
    w[1].qs[j] = 2;
  }
  std::vector<float> x(64, 1.0f);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j + 1);
  std::vector<float> y(4, 100.0f);
  k::cpu::matvec(k::GgmlType::q8_0, w.data(), 2, 32, x.data(), y.data(), 2, false);
  CHECK(y == std::vector<float>{264.0f, 528.0f, 16.0f, 32.0f});
  k::cpu::matvec(k::GgmlType::q8_0, w.data(), 2, 32, x.data(), y.data(), 1, true);  // accumulate
  CHECK(y[0] == 528.0f);
  CHECK(y[1] == 1056.0f);
}

TEST_CASE("rmsnorm by hand") {
  // x = (3, 4): mean square 12.5, rms 3.5355339; w = (1, 2) -> (0.8485281, 2.2627417).
  const float x[2] = {3.0f, 4.0f};
  const float w[2] = {1.0f, 2.0f};
  float y[2];
  k::cpu::rmsnorm(x, w, y, 1, 2, 0.0f);
  CHECK(y[0] == Approx(0.8485281));
  CHECK(y[1] == Approx(2.2627417));
}

TEST_CASE("rope rotates adjacent pairs by pos * base^(-2i/d)") {
  // head_dim 4, base 10000, position 1: pair 0 turns by 1 rad, pair 1 by 10000^(-1/2) = 0.01 rad.
  // (1, 0) -> (cos 1, sin 1) = (0.5403023, 0.8414710); (0, 1) -> (-sin .01, cos .01) = (-0.0099998, 0.99995).
  // The second token is at position 0 and stays as it is.
  float x[8] = {1, 0, 0, 1, 1, 2, 3, 4};
  const int pos[2] = {1, 0};
  k::cpu::rope(x, 2, 1, 4, 4, pos, 10000.0f);
  CHECK(x[0] == Approx(0.5403023));
  CHECK(x[1] == Approx(0.8414710));
  CHECK(x[2] == Approx(-0.0099998));
  CHECK(x[3] == Approx(0.99995));
  CHECK(x[4] == 1.0f);
  CHECK(x[7] == 4.0f);
}

TEST_CASE("swiglu, add and softmax by hand") {
  // silu(1) = 1 / (1 + e^-1) = 0.7310586; times up = 2 -> 1.4621172. silu(0) = 0.
  const float gate[2] = {1.0f, 0.0f};
  const float up[2] = {2.0f, 5.0f};
  float out[2];
  k::cpu::swiglu(gate, up, out, 2);
  CHECK(out[0] == Approx(1.4621172));
  CHECK(out[1] == 0.0f);
  k::cpu::add(gate, up, out, 2);
  CHECK(out[0] == 3.0f);
  CHECK(out[1] == 5.0f);
  // softmax(0, ln 3) = (1/4, 3/4).
  float s[2] = {0.0f, std::log(3.0f)};
  k::cpu::softmax(s, 1, 2);
  CHECK(s[0] == Approx(0.25));
  CHECK(s[1] == Approx(0.75));
}

TEST_CASE("attention over the cache with grouped heads by hand") {
  // One KV head of dim 2 shared by two query heads; keys (1,0), (0,1); values (1,0), (0,1).
  // q = (ln 3, 0), scale 1: scores (ln 3, 0) -> weights (3/4, 1/4) -> out (0.75, 0.25).
  // With length 1 only position 0 is visible: out = (1, 0).
  k::AttentionShape shape{2, 1, 2, 4, 1};
  std::vector<float> kc(8, 99.0f), vc(8, 99.0f);
  const float keys[4] = {1, 0, 0, 1};
  const int slots[2] = {0, 0};
  const int pos[2] = {0, 1};
  k::cpu::kv_store(keys, keys, 2, 2, kc.data(), vc.data(), shape, slots, pos);
  const float ln3 = std::log(3.0f);
  const float q[4] = {ln3, 0, ln3, 0};
  float out[4];
  const int lens[1] = {2};
  k::cpu::attention_decode(q, 4, kc.data(), vc.data(), out, 1, shape, slots, lens, 1.0f);
  CHECK(out[0] == Approx(0.75));
  CHECK(out[1] == Approx(0.25));
  CHECK(out[2] == Approx(0.75));
  // Prefill of the same two tokens: token 0 sees only itself.
  float q2[8] = {ln3, 0, ln3, 0, ln3, 0, ln3, 0};
  float out2[8];
  k::cpu::attention_prefill(q2, 4, kc.data(), vc.data(), out2, 2, shape, 0, 0, 1.0f);
  CHECK(out2[0] == Approx(1.0));
  CHECK(out2[1] == Approx(0.0));
  CHECK(out2[4] == Approx(0.75));
  CHECK(out2[5] == Approx(0.25));
  // A slot outside the cache is refused, never read or written.
  const int bad_slot[1] = {1};
  CHECK_THROWS_AS(k::cpu::attention_decode(q, 4, kc.data(), vc.data(), out, 1, shape, bad_slot, lens, 1.0f),
                  std::out_of_range);
  CHECK_THROWS_AS(k::cpu::kv_store(keys, keys, 2, 1, kc.data(), vc.data(), shape, bad_slot, pos), std::out_of_range);
  CHECK_THROWS_AS(k::cpu::attention_prefill(q2, 4, kc.data(), vc.data(), out2, 2, shape, -1, 0, 1.0f),
                  std::out_of_range);
}

TEST_CASE("get_rows dequantizes the chosen Q8_0 rows") {
  std::vector<k::BlockQ8_0> table(3);
  for (int r = 0; r < 3; ++r) {
    table[r].d = 0x3c00;  // 1.0
    for (int j = 0; j < 32; ++j) table[r].qs[j] = static_cast<std::int8_t>(r * 10 + j % 3);
  }
  const int ids[2] = {2, 0};
  std::vector<float> out(64);
  k::cpu::get_rows(k::GgmlType::q8_0, table.data(), 3, 32, ids, 2, out.data());
  CHECK(out[0] == 20.0f);
  CHECK(out[1] == 21.0f);
  CHECK(out[32] == 0.0f);
  CHECK(out[34] == 2.0f);
  const int bad[1] = {3};
  CHECK_THROWS_AS(k::cpu::get_rows(k::GgmlType::q8_0, table.data(), 3, 32, bad, 1, out.data()), std::out_of_range);
}

TEST_CASE("sampling: greedy, top-k 1, tiny top-p and a fair coin") {
  const float logits[4] = {0.5f, 3.0f, 3.0f, -1.0f};
  k::SampleParams greedy{};
  CHECK(k::cpu::sample(logits, 4, greedy, 0) == 1);  // lowest index among equal maxima
  k::SampleParams topk1{1.0f, 1, 1.0f, 0, 42};
  // Tokens 1 and 2 tie for the largest weight, so top-k 1 keeps both.
  for (std::uint64_t c = 0; c < 16; ++c) {
    const int t = k::cpu::sample(logits, 4, topk1, c);
    CHECK((t == 1 || t == 2));
  }
  // Two equal logits at temperature 1: weights 2^32 each, total 2^33; r = floor(u * 2^33) picks token 1
  // when r >= 2^32, i.e. when u >= 1/2, i.e. when the hash's top bit is set.
  const float coin[2] = {0.0f, 0.0f};
  k::SampleParams fair{1.0f, 0, 1.0f, 0, 7};
  int ones = 0;
  for (std::uint64_t c = 0; c < 64; ++c) {
    const int expected = static_cast<int>(k::random_u64(7, c) >> 63);
    const int got = k::cpu::sample(coin, 2, fair, c);
    CHECK(got == expected);
    ones += got;
  }
  CHECK(ones > 0);
  CHECK(ones < 64);
  // top-p 0.1 keeps only the largest weight(s): logits (0, -10) -> always token 0.
  const float peaked[2] = {0.0f, -1.0f};
  k::SampleParams nucleus{1.0f, 0, 0.1f, 0, 3};
  for (std::uint64_t c = 0; c < 16; ++c) CHECK(k::cpu::sample(peaked, 2, nucleus, c) == 0);
}

TEST_CASE("without a device the CUDA side reports zero devices or works") {
  const int n = k::cuda::device_count();
  CHECK(n >= 0);
  if (!k::cuda::compiled()) {
    CHECK(n == 0);
    CHECK_THROWS_AS(k::cuda::Stream{}, k::cuda::NotCompiled);
    k::cuda::DeviceBuffer<float> empty;  // an empty buffer needs no device
    CHECK(empty.empty());
  }
}

TEST_CASE("philox4x32_10 matches the Random123 known-answer vectors") {
  struct Kat {
    k::Philox4x32 ctr;
    std::uint32_t key0, key1;
    k::Philox4x32 out;
  };
  const Kat kats[] = {
      {{{0u, 0u, 0u, 0u}}, 0u, 0u, {{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}}},
      {{{0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}},
       0xffffffffu,
       0xffffffffu,
       {{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}}},
      {{{0x243f6a88u, 0x85a308d3u, 0x13198a2eu, 0x03707344u}},
       0xa4093822u,
       0x299f31d0u,
       {{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}}},
  };
  for (const Kat& kat : kats) {
    const k::Philox4x32 got = k::philox4x32_10(kat.ctr, kat.key0, kat.key1);
    for (int i = 0; i < 4; ++i) CHECK(got.v[i] == kat.out.v[i]);
  }
  // The sampler's word: counter in the low counter words, seed as the key, output words 0 and 1.
  static_assert(k::random_u64(0, 0) == 0xe169c58d6627e8d5ull);
}

TEST_CASE("sample_weight is floor(exp(x) * 2^32) to within 2e-7 relative") {
  CHECK(k::sample_weight(3.0f, 3.0f, 0.7f) == 4294967296ull);  // the maximum weighs exactly 2^32
  CHECK(k::sample_weight(-30.0f, 0.0f, 1.0f) == 0);
  CHECK(k::sample_weight(-INFINITY, 0.0f, 1.0f) == 0);
  CHECK(k::sample_weight(NAN, 0.0f, 1.0f) == 0);
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    const float x = -22.0f * static_cast<float>(i) / 200000.0f;
    const double want = std::exp(static_cast<double>(x)) * 4294967296.0;
    const auto got = static_cast<double>(k::sample_weight(x, 0.0f, 1.0f));
    if (want > 1e9) worst = std::max(worst, std::abs(got - want) / want);
  }
  CHECK(worst < 2e-7);
}

TEST_CASE("sampling is pinned: fixed logits and seeds give fixed tokens") {
  // Any change here changes every seeded generation on every backend: the definition in
  // kernels/sampling.h is a compatibility promise, so these tokens must only change on purpose.
  std::vector<float> logits(1000);
  for (std::size_t i = 0; i < logits.size(); ++i) logits[i] = 4.0f * std::sin(0.37f * static_cast<float>(i));
  const k::SampleParams cases[] = {
      {0.8f, 0, 1.0f, 0, 1},
      {1.0f, 40, 1.0f, 0, 2},
      {0.7f, 0, 0.9f, 0, 3},
      {1.3f, 50, 0.95f, 0, 4},
  };
  std::vector<int> got;
  for (const k::SampleParams& p : cases) {
    for (std::uint64_t step = 0; step < 4; ++step) got.push_back(k::cpu::sample(logits.data(), 1000, p, step));
  }
  const std::vector<int> pinned = {888, 871, 549, 37, 327, 157, 972, 395, 107, 549, 785, 156, 582, 480, 904, 293};
  CHECK(got == pinned);
}

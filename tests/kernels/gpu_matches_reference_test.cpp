// Every CUDA kernel against its CPU reference on seeded random inputs, each with the tolerance its
// precision allows. Suite "gpu": without a device every case returns early with a message.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <span>
#include <vector>

#include "kernels/add.h"
#include "kernels/attention.h"
#include "kernels/dequantize.h"
#include "kernels/device.h"
#include "kernels/gemm.h"
#include "kernels/get_rows.h"
#include "kernels/matvec.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"
#include "kernels/softmax.h"
#include "kernels/swiglu.h"

namespace k = podworker::kernels;
namespace kc = podworker::kernels::cuda;

namespace {

bool have_device() {
  if (kc::device_count() > 0) return true;
  MESSAGE("no CUDA device (or CUDA not built): skipped");
  return false;
}

std::vector<float> random_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

template <class T>
kc::DeviceBuffer<T> to_device(const std::vector<T>& host) {
  kc::DeviceBuffer<T> d(host.size());
  d.upload(host, kc::StreamView{});  // the legacy default stream, as every launch here
  return d;
}

template <class T>
std::vector<T> to_host(const kc::DeviceBuffer<T>& d) {
  std::vector<T> h(d.size());
  d.download(h, kc::StreamView{});
  kc::device_synchronize();
  return h;
}

// Largest |a - b| / (abs_tol + rel_tol * |b|); <= 1 passes.
void check_close(std::span<const float> got, std::span<const float> want, double abs_tol, double rel_tol) {
  REQUIRE(got.size() == want.size());
  double worst = 0.0;
  std::size_t at = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    const double diff = std::fabs(static_cast<double>(got[i]) - want[i]);
    const double err = diff == 0.0 ? 0.0 : diff / (abs_tol + rel_tol * std::fabs(want[i]));
    if (!(err <= worst)) {  // also catches NaN
      worst = std::isnan(err) ? 1e30 : err;
      at = i;
    }
  }
  INFO("worst element " << at << ": got " << got[at] << ", want " << want[at]);
  CHECK(worst <= 1.0);
}

std::vector<std::byte> quantized(k::GgmlType type, const std::vector<float>& x) {
  std::vector<std::byte> q(k::tensor_bytes(type, static_cast<std::int64_t>(x.size())));
  k::cpu::quantize(type, x.data(), q.data(), static_cast<std::int64_t>(x.size()));
  return q;
}

}  // namespace

TEST_SUITE("gpu") {

TEST_CASE("device_count reports at least one device with a name") {
  if (!have_device()) return;
  const kc::DeviceInfo info = kc::device_info(0);
  MESSAGE("device 0: " << info.name << ", sm_" << info.compute_major << info.compute_minor << ", driver "
                       << info.driver_version);
  CHECK(!info.name.empty());
  CHECK(info.sm_count > 0);
}

// Tolerance: exact up to one float rounding (d * q + m may be fused).
TEST_CASE("dequantize_matches_reference") {
  if (!have_device()) return;
  const std::int64_t n = 256 * 37;
  const auto x = random_floats(static_cast<std::size_t>(n), 1, -3.0f, 3.0f);
  for (auto type : {k::GgmlType::q4_0, k::GgmlType::q4_1, k::GgmlType::q8_0, k::GgmlType::f16, k::GgmlType::bf16,
                    k::GgmlType::f32}) {
    CAPTURE(k::type_name(type));
    const auto q = quantized(type, x);
    std::vector<float> want(static_cast<std::size_t>(n));
    k::cpu::dequantize(type, q.data(), want.data(), n);
    auto dq = to_device(q);
    kc::DeviceBuffer<float> out(static_cast<std::size_t>(n));
    kc::dequantize(type, dq.get(), out.get(), n, {});
    check_close(to_host(out), want, 1e-6, 1e-6);
    kc::DeviceBuffer<k::half_bits> out16(static_cast<std::size_t>(n));
    kc::dequantize_to_f16(type, dq.get(), out16.get(), n, {});
    const auto h16 = to_host(out16);
    std::vector<float> got16(h16.size());
    std::transform(h16.begin(), h16.end(), got16.begin(), k::fp16_to_fp32);
    check_close(got16, want, 1e-3, 1e-3);  // one half rounding: 2^-11 relative
  }
  // Q6_K from random bytes (any bit pattern is a valid block once d is a sane half).
  std::mt19937 rng(5);
  std::vector<k::BlockQ6_K> q6(16);
  for (auto& b : q6) {
    auto* bytes = reinterpret_cast<std::uint8_t*>(&b);
    for (std::size_t i = 0; i < sizeof b; ++i) bytes[i] = static_cast<std::uint8_t>(rng());
    b.d = k::fp32_to_fp16(0.01f);
  }
  std::vector<float> want(16 * 256);
  k::cpu::dequantize(k::GgmlType::q6_k, q6.data(), want.data(), 16 * 256);
  auto dq = to_device(q6);
  kc::DeviceBuffer<float> out(want.size());
  kc::dequantize(k::GgmlType::q6_k, dq.get(), out.get(), 16 * 256, {});
  check_close(to_host(out), want, 1e-6, 1e-6);
}

// Tolerance: F32 accumulation in a different order: 1e-4 absolute on outputs of size ~sqrt(k) plus 1e-4
// relative.
TEST_CASE("matvec_matches_reference") {
  if (!have_device()) return;
  struct Shape {
    std::int64_t rows, k;
  };
  for (auto type : {k::GgmlType::q4_1, k::GgmlType::q8_0, k::GgmlType::q4_0, k::GgmlType::f16}) {
    for (Shape s : {Shape{576, 576}, Shape{192, 576}, Shape{1536, 576}, Shape{576, 1536}, Shape{37, 96}}) {
      for (int batch : {1, 2, 5, 8, 17, 64}) {
        CAPTURE(k::type_name(type));
        CAPTURE(s.rows);
        CAPTURE(s.k);
        CAPTURE(batch);
        const auto w = random_floats(static_cast<std::size_t>(s.rows * s.k), 11);
        const auto x = random_floats(static_cast<std::size_t>(batch * s.k), 12);
        const auto y0 = random_floats(static_cast<std::size_t>(batch * s.rows), 13);
        const auto q = quantized(type, w);
        for (bool accumulate : {false, true}) {
          std::vector<float> want = y0;
          k::cpu::matvec(type, q.data(), s.rows, s.k, x.data(), want.data(), batch, accumulate);
          auto dw = to_device(q);
          auto dx = to_device(x);
          auto dy = to_device(y0);
          kc::matvec(type, dw.get(), s.rows, s.k, dx.get(), dy.get(), batch, accumulate, {});
          check_close(to_host(dy), want, 1e-4, 1e-4);

          // F16 activations: the reference sees the same half-rounded x.
          std::vector<k::half_bits> x16(x.size());
          std::vector<float> x16f(x.size());
          for (std::size_t i = 0; i < x.size(); ++i) {
            x16[i] = k::fp32_to_fp16(x[i]);
            x16f[i] = k::fp16_to_fp32(x16[i]);
          }
          std::vector<float> want16 = y0;
          k::cpu::matvec(type, q.data(), s.rows, s.k, x16f.data(), want16.data(), batch, accumulate);
          auto dx16 = to_device(x16);
          auto dy16 = to_device(y0);
          kc::matvec(type, dw.get(), s.rows, s.k, dx16.get(), dy16.get(), batch, accumulate, {});
          check_close(to_host(dy16), want16, 1e-4, 1e-4);
        }
      }
    }
  }
}

// Tolerance: the reference uses the same BF16-rounded W and X, so only the accumulation order differs
// (cuBLAS may split k): 1e-3 absolute + 1e-3 relative.
TEST_CASE("gemm_matches_reference") {
  if (!have_device()) return;
  kc::CublasHandle handle;
  const std::int64_t rows = 576, k_dim = 1536, tokens = 77;
  const auto w = random_floats(static_cast<std::size_t>(rows * k_dim), 21);
  const auto x = random_floats(static_cast<std::size_t>(tokens * k_dim), 22);
  for (auto wtype : {k::GgmlType::q4_1, k::GgmlType::q8_0, k::GgmlType::f16}) {
    CAPTURE(k::type_name(wtype));
    const auto q = quantized(wtype, w);
    // Reference inputs: weights dequantized then rounded to BF16, activations rounded to BF16.
    std::vector<float> wf(w.size());
    k::cpu::dequantize(wtype, q.data(), wf.data(), static_cast<std::int64_t>(w.size()));
    for (float& v : wf) v = k::bf16_to_fp32(k::fp32_to_bf16(v));
    std::vector<float> xb(x.size());
    for (std::size_t i = 0; i < x.size(); ++i) xb[i] = k::bf16_to_fp32(k::fp32_to_bf16(x[i]));
    std::vector<float> want(static_cast<std::size_t>(tokens * rows), 0.5f);
    k::cpu::matvec(k::GgmlType::f32, wf.data(), rows, k_dim, xb.data(), want.data(), static_cast<int>(tokens), true);

    auto dw = to_device(q);
    auto dx = to_device(x);
    auto dy = to_device(std::vector<float>(want.size(), 0.5f));
    kc::DeviceBuffer<std::byte> scratch(kc::gemm_scratch_bytes(rows, k_dim, tokens));
    kc::gemm(handle, wtype, dw.get(), rows, k_dim, dx.get(), tokens, dy.get(), 1.0f, scratch.get(), scratch.bytes(),
             {});
    check_close(to_host(dy), want, 1e-3, 1e-3);
  }
}

// Tolerance: 1e-5 relative (one rsqrt, sums in a different order).
TEST_CASE("rmsnorm_matches_reference") {
  if (!have_device()) return;
  for (std::int64_t dim : {576, 1536, 4096, 100}) {
    const std::int64_t rows = 7;
    const auto x = random_floats(static_cast<std::size_t>(rows * dim), 31, -2.0f, 2.0f);
    const auto w = random_floats(static_cast<std::size_t>(dim), 32);
    std::vector<float> want(x.size());
    k::cpu::rmsnorm(x.data(), w.data(), want.data(), rows, dim, 1e-5f);
    auto dx = to_device(x);
    auto dw = to_device(w);
    kc::DeviceBuffer<float> dy(x.size());
    kc::rmsnorm(dx.get(), dw.get(), dy.get(), rows, dim, 1e-5f, {});
    check_close(to_host(dy), want, 1e-6, 1e-5);
  }
}

// Tolerance: 1e-5 absolute (angles are computed in double on both sides).
TEST_CASE("rope_matches_reference") {
  if (!have_device()) return;
  const int n_heads = 9, head_dim = 64;
  const std::int64_t tokens = 5, stride = 15 * 64;  // q inside a fused QKV row
  auto x = random_floats(static_cast<std::size_t>(tokens * stride), 41);
  const std::vector<int> pos = {0, 1, 17, 2047, 8191};
  std::vector<float> want = x;
  k::cpu::rope(want.data(), tokens, n_heads, head_dim, stride, pos.data(), 100000.0f);
  auto dx = to_device(x);
  auto dpos = to_device(pos);
  kc::rope(dx.get(), tokens, n_heads, head_dim, stride, dpos.get(), 100000.0f, {});
  check_close(to_host(dx), want, 1e-5, 1e-5);
}

// Tolerance: 1e-6 relative (one expf; the device expf is within 2 ulp).
TEST_CASE("swiglu_matches_reference") {
  if (!have_device()) return;
  const std::int64_t n = 1536 * 3 + 5;
  const auto g = random_floats(static_cast<std::size_t>(n), 51, -8.0f, 8.0f);
  const auto u = random_floats(static_cast<std::size_t>(n), 52);
  std::vector<float> want(g.size());
  k::cpu::swiglu(g.data(), u.data(), want.data(), n);
  auto dg = to_device(g);
  auto du = to_device(u);
  kc::DeviceBuffer<float> out(g.size());
  kc::swiglu(dg.get(), du.get(), out.get(), n, {});
  check_close(to_host(out), want, 1e-6, 1e-5);
}

// Tolerance: exact (one float addition).
TEST_CASE("add_matches_reference") {
  if (!have_device()) return;
  const std::int64_t n = 576 * 33 + 3;
  const auto a = random_floats(static_cast<std::size_t>(n), 61);
  const auto b = random_floats(static_cast<std::size_t>(n), 62);
  std::vector<float> want(a.size());
  k::cpu::add(a.data(), b.data(), want.data(), n);
  auto da = to_device(a);
  auto db = to_device(b);
  kc::add(da.get(), db.get(), da.get(), n, {});  // in place, as the residual stream uses it
  check_close(to_host(da), want, 0.0, 1e-7);
}

// Tolerance: 1e-6 absolute (probabilities), 1e-5 relative.
TEST_CASE("softmax_matches_reference") {
  if (!have_device()) return;
  for (std::int64_t cols : {7, 576, 49152}) {
    const std::int64_t rows = 3;
    auto x = random_floats(static_cast<std::size_t>(rows * cols), 71, -10.0f, 10.0f);
    std::vector<float> want = x;
    k::cpu::softmax(want.data(), rows, cols);
    auto dx = to_device(x);
    kc::softmax(dx.get(), rows, cols, {});
    check_close(to_host(dx), want, 1e-6, 1e-4);
  }
}

// Tolerance: 1e-4 absolute, 1e-4 relative (online softmax vs two-pass, different sum order).
TEST_CASE("attention_matches_reference") {
  if (!have_device()) return;
  const int slots_n = 4;
  const k::AttentionShape shape{9, 3, 64, 300, slots_n};
  const std::size_t cache = static_cast<std::size_t>(slots_n * shape.max_ctx * shape.kv_dim());
  const auto kcache = random_floats(cache, 81);
  const auto vcache = random_floats(cache, 82);
  auto dk = to_device(kcache);
  auto dv = to_device(vcache);
  const float scale = 0.125f;

  // Decode: 4 sequences with different slots and lengths; q inside a fused QKV row.
  const int batch = 4;
  const std::int64_t q_stride = 15 * 64;
  const auto q = random_floats(static_cast<std::size_t>(batch * q_stride), 83);
  const std::vector<int> slots = {2, 0, 3, 1};
  const std::vector<int> lens = {1, 300, 129, 64};
  std::vector<float> want(static_cast<std::size_t>(batch * shape.q_dim()));
  k::cpu::attention_decode(q.data(), q_stride, kcache.data(), vcache.data(), want.data(), batch, shape, slots.data(),
                           lens.data(), scale);
  auto dq = to_device(q);
  auto dslots = to_device(slots);
  auto dlens = to_device(lens);
  kc::DeviceBuffer<float> out(want.size());
  kc::attention_decode(dq.get(), q_stride, dk.get(), dv.get(), out.get(), batch, shape, dslots.get(), dlens.get(),
                       scale, {});
  check_close(to_host(out), want, 1e-4, 1e-4);

  // Prefill: 50 tokens starting at position 20 of slot 1.
  const std::int64_t tokens = 50;
  const auto qp = random_floats(static_cast<std::size_t>(tokens * shape.q_dim()), 84);
  std::vector<float> wantp(qp.size());
  k::cpu::attention_prefill(qp.data(), shape.q_dim(), kcache.data(), vcache.data(), wantp.data(), tokens, shape, 1,
                            20, scale);
  auto dqp = to_device(qp);
  kc::DeviceBuffer<float> outp(qp.size());
  kc::attention_prefill(dqp.get(), shape.q_dim(), dk.get(), dv.get(), outp.get(), tokens, shape, 1, 20, scale, {});
  check_close(to_host(outp), wantp, 1e-4, 1e-4);

  // kv_store: exact copy.
  const auto kv = random_floats(static_cast<std::size_t>(3 * 2 * shape.kv_dim()), 85);
  const std::vector<int> st_slots = {3, 0, 3};
  const std::vector<int> st_pos = {5, 299, 6};
  std::vector<float> kw = kcache, vw = vcache;
  k::cpu::kv_store(kv.data(), kv.data() + shape.kv_dim(), 2 * shape.kv_dim(), 3, kw.data(), vw.data(), shape,
                   st_slots.data(), st_pos.data());
  auto dkv = to_device(kv);
  auto dss = to_device(st_slots);
  auto dsp = to_device(st_pos);
  kc::kv_store(dkv.get(), dkv.get() + shape.kv_dim(), 2 * shape.kv_dim(), 3, dk.get(), dv.get(), shape, dss.get(),
               dsp.get(), {});
  check_close(to_host(dk), kw, 0.0, 1e-30);
  check_close(to_host(dv), vw, 0.0, 1e-30);
}

// Tolerance: exact (a copy of dequantized values); out-of-range ids give zero rows.
TEST_CASE("get_rows_matches_reference") {
  if (!have_device()) return;
  const std::int64_t n_rows = 1000, dim = 576;
  const auto table = random_floats(static_cast<std::size_t>(n_rows * dim), 91);
  const std::vector<int> ids = {0, 999, 17, 17, 512};
  for (auto type : {k::GgmlType::q8_0, k::GgmlType::q4_1, k::GgmlType::f16, k::GgmlType::f32}) {
    const auto q = quantized(type, table);
    std::vector<float> want(ids.size() * dim);
    k::cpu::get_rows(type, q.data(), n_rows, dim, ids.data(), static_cast<std::int64_t>(ids.size()), want.data());
    auto dt = to_device(q);
    auto di = to_device(ids);
    kc::DeviceBuffer<float> out(want.size());
    kc::get_rows(type, dt.get(), n_rows, dim, di.get(), static_cast<std::int64_t>(ids.size()), out.get(), {});
    check_close(to_host(out), want, 1e-7, 1e-7);
  }
}

// Argmax and sampling: exact, token for token (sample_weight is bit-identical on host and device, the
// sums are integers and the draw is Philox4x32-10 on both sides).
TEST_CASE("sampling_matches_reference") {
  if (!have_device()) return;
  const int vocab = 49152, batch = 16;
  const auto logits = random_floats(static_cast<std::size_t>(batch * vocab), 101, -6.0f, 6.0f);
  auto dl = to_device(logits);
  kc::DeviceBuffer<int> dtok(batch);

  kc::argmax(dl.get(), batch, vocab, dtok.get(), {});
  const auto am = to_host(dtok);
  for (int b = 0; b < batch; ++b) CHECK(am[b] == k::cpu::sample(logits.data() + b * vocab, vocab, {}, 0));

  for (int round = 0; round < 8; ++round) {
    std::vector<k::SampleParams> params(batch);
    std::vector<int> counters(batch);
    for (int b = 0; b < batch; ++b) {
      const float temps[4] = {0.0f, 0.7f, 1.0f, 1.5f};
      const int ks[4] = {0, 1, 40, 1000};
      const float ps[4] = {1.0f, 0.9f, 0.5f, 0.95f};
      params[b] = k::SampleParams{temps[(b + round) % 4], ks[b % 4], ps[(b / 4) % 4], 0,
                                  static_cast<std::uint64_t>(1000 + b)};
      counters[b] = round * 31 + b;
    }
    auto dp = to_device(params);
    auto dc = to_device(counters);
    kc::sample(dl.get(), batch, vocab, dp.get(), dc.get(), dtok.get(), {});
    const auto got = to_host(dtok);
    for (int b = 0; b < batch; ++b) {
      const int want =
          k::cpu::sample(logits.data() + b * vocab, vocab, params[b], static_cast<std::uint64_t>(counters[b]));
      // One definition with bit-identical weights and an integer draw: the device picks exactly
      // the reference's token, every time.
      INFO("row " << b << " round " << round);
      CHECK(got[b] == want);
    }
  }
}

}  // TEST_SUITE("gpu")

// The CUDA kernels of kernels/cuda that the CUDA backend's graph does not run as ops of its own
// (dequantize to F32 and F16, the standalone RoPE, SwiGLU, residual add, softmax, KV store, argmax
// and sampling) against their references, so every CUDA kernel is checked in one harness. Without
// CUDA in the build there are no cases.
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "op_harness.h"
#if PODWORKER_TEST_OPS_CUDA
#include "cuda_support.h"
#include "kernels/add.h"
#include "kernels/attention.h"
#include "kernels/rope.h"
#include "kernels/sampling.h"
#include "kernels/softmax.h"
#include "kernels/swiglu.h"
#endif

namespace podworker::ops_test {

#if PODWORKER_TEST_OPS_CUDA

namespace {

using FloatsPtr = std::shared_ptr<const std::vector<float>>;

FloatsPtr shared_floats(std::size_t n, std::uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  return std::make_shared<const std::vector<float>>(random_floats(n, seed, lo, hi));
}

// Dequantization to F32 is exact up to one rounding (d * q + m may be fused): NMSE 1e-12. To F16,
// one half rounding more (2^-11 relative): NMSE 1e-6. Q6_K blocks from random bytes (any bit
// pattern is a valid block once d is a sane half).
void dequantize_cases(Runner& runner) {
  const std::int64_t n = 256 * 37;
  const auto x = random_floats(static_cast<std::size_t>(n), 1, -3.0f, 3.0f);
  auto run_type = [&](GgmlType type, std::shared_ptr<const std::vector<std::byte>> q) {
    const auto dq = to_device(*q);
    auto out = std::make_shared<kc::DeviceBuffer<float>>(static_cast<std::size_t>(n));
    auto out16 =
        std::make_shared<kc::DeviceBuffer<kernels::half_bits>>(static_cast<std::size_t>(n));
    auto reference = [=] {
      std::vector<float> y(static_cast<std::size_t>(n));
      kernels::cpu::dequantize(type, q->data(), y.data(), n);
      return y;
    };
    Case c = device_case("dequantize", "256x37 blocks", 1e-12);
    c.type = kernels::type_name(type);
    c.bytes = static_cast<double>(q->size()) + 4.0 * static_cast<double>(n);
    c.reference = reference;
    c.launch = [=] { kc::dequantize(type, dq->get(), out->get(), n, stream()); };
    c.result = [out] { return to_host(*out); };
    runner.run(c);
    Case h = device_case("dequantize_to_f16", "256x37 blocks", 1e-6);
    h.type = c.type;
    h.bytes = static_cast<double>(q->size()) + 2.0 * static_cast<double>(n);
    h.reference = reference;
    h.launch = [=] { kc::dequantize_to_f16(type, dq->get(), out16->get(), n, stream()); };
    h.result = [out16] { return halves_to_floats(to_host(*out16)); };
    runner.run(h);
  };
  for (GgmlType type : {GgmlType::q4_0, GgmlType::q4_1, GgmlType::q8_0, GgmlType::f16,
                        GgmlType::bf16, GgmlType::f32}) {
    run_type(type, std::make_shared<const std::vector<std::byte>>(quantized(type, x)));
  }
  std::mt19937 rng(5);
  std::vector<kernels::BlockQ6_K> q6(static_cast<std::size_t>(n / 256));
  for (auto& b : q6) {
    auto* bytes = reinterpret_cast<std::uint8_t*>(&b);
    for (std::size_t i = 0; i < sizeof b; ++i) bytes[i] = static_cast<std::uint8_t>(rng());
    b.d = kernels::fp32_to_fp16(0.01f);
  }
  const auto* raw = reinterpret_cast<const std::byte*>(q6.data());
  run_type(GgmlType::q6_k,
           std::make_shared<const std::vector<std::byte>>(raw, raw + q6.size() * sizeof q6[0]));
}

// The standalone RoPE on q inside a fused QKV row, positions up to 8191: angles in double on both
// sides, F32 rotation: NMSE 1e-10.
void rope_cases(Runner& runner) {
  const int n_heads = 9, head_dim = 64;
  const std::int64_t tokens = 5, stride = 15 * 64;
  const auto x = shared_floats(static_cast<std::size_t>(tokens * stride), 41);
  const auto pos = std::make_shared<const std::vector<int>>(std::vector<int>{0, 1, 17, 2047, 8191});
  const auto dpos = to_device(*pos);
  auto dx = std::make_shared<kc::DeviceBuffer<float>>(x->size());
  Case c = device_case("rope", "smollm2-135m q, 5 tokens", 1e-10);
  c.batch = static_cast<int>(tokens);
  c.bytes = 8.0 * static_cast<double>(tokens * n_heads * head_dim);
  c.reference = [=] {
    std::vector<float> y = *x;
    kernels::cpu::rope(y.data(), tokens, n_heads, head_dim, stride, pos->data(), 100000.0f);
    return y;
  };
  c.launch = [=] {
    kc::copy_to_device(dx->get(), x->data(), x->size() * sizeof(float), stream());
    kc::rope(dx->get(), tokens, n_heads, head_dim, stride, dpos->get(), 100000.0f, stream());
  };
  c.result = [dx] { return to_host(*dx); };
  runner.run(c);
}

// Elementwise: SwiGLU (one expf, within 2 ulp on the device: NMSE 1e-12), the residual add in place
// (one float addition: exact), softmax per row (one expf and sums in another order: NMSE 1e-10).
void elementwise_cases(Runner& runner) {
  {
    const std::int64_t n = 1536 * 3 + 5;
    const auto g = shared_floats(static_cast<std::size_t>(n), 51, -8.0f, 8.0f);
    const auto u = shared_floats(static_cast<std::size_t>(n), 52);
    const auto dg = to_device(*g), du = to_device(*u);
    auto out = std::make_shared<kc::DeviceBuffer<float>>(static_cast<std::size_t>(n));
    Case c = device_case("swiglu", "3 x n_ff + 5", 1e-12);
    c.bytes = 12.0 * static_cast<double>(n);
    c.reference = [=] {
      std::vector<float> y(g->size());
      kernels::cpu::swiglu(g->data(), u->data(), y.data(), n);
      return y;
    };
    c.launch = [=] { kc::swiglu(dg->get(), du->get(), out->get(), n, stream()); };
    c.result = [out] { return to_host(*out); };
    runner.run(c);
  }
  {
    const std::int64_t n = 576 * 33 + 3;
    const auto a = shared_floats(static_cast<std::size_t>(n), 61);
    const auto b = shared_floats(static_cast<std::size_t>(n), 62);
    auto da = std::make_shared<kc::DeviceBuffer<float>>(a->size());
    const auto db = to_device(*b);
    Case c = device_case("add", "33 x n_embd + 3, in place", 0.0);
    c.bytes = 12.0 * static_cast<double>(n);
    c.reference = [=] {
      std::vector<float> y(a->size());
      kernels::cpu::add(a->data(), b->data(), y.data(), n);
      return y;
    };
    c.launch = [=] {
      kc::copy_to_device(da->get(), a->data(), a->size() * sizeof(float), stream());
      kc::add(da->get(), db->get(), da->get(), n,
              stream());  // in place, as the residual stream uses it
    };
    c.result = [da] { return to_host(*da); };
    runner.run(c);
  }
  for (std::int64_t cols : {7, 576, 49152}) {
    const std::int64_t rows = 3;
    const auto x = shared_floats(static_cast<std::size_t>(rows * cols), 71, -10.0f, 10.0f);
    auto dx = std::make_shared<kc::DeviceBuffer<float>>(x->size());
    Case c = device_case("softmax", std::to_string(rows) + " x " + std::to_string(cols), 1e-10);
    c.batch = static_cast<int>(rows);
    c.bytes = 8.0 * static_cast<double>(x->size());
    c.reference = [=] {
      std::vector<float> y = *x;
      kernels::cpu::softmax(y.data(), rows, cols);
      return y;
    };
    c.launch = [=] {
      kc::copy_to_device(dx->get(), x->data(), x->size() * sizeof(float), stream());
      kc::softmax(dx->get(), rows, cols, stream());
    };
    c.result = [dx] { return to_host(*dx); };
    runner.run(c);
  }
}

// The standalone KV store (the backend fuses it into rope_store): an exact copy into the slots'
// rows, both caches compared whole.
void kv_store_cases(Runner& runner) {
  const kernels::AttentionShape shape{9, 3, 64, 300, 4};
  const std::size_t cache =
      static_cast<std::size_t>(shape.n_slots) * shape.max_ctx * shape.kv_dim();
  const auto kc0 = shared_floats(cache, 81), vc0 = shared_floats(cache, 82);
  const auto kv = shared_floats(static_cast<std::size_t>(3 * 2 * shape.kv_dim()), 85);
  const auto slots = std::make_shared<const std::vector<int>>(std::vector<int>{3, 0, 3});
  const auto pos = std::make_shared<const std::vector<int>>(std::vector<int>{5, 299, 6});
  const auto dkv = to_device(*kv);
  const auto dslots = to_device(*slots);
  const auto dpos = to_device(*pos);
  auto dk = std::make_shared<kc::DeviceBuffer<float>>(cache),
       dv = std::make_shared<kc::DeviceBuffer<float>>(cache);
  Case c = device_case("kv_store", "smollm2-135m, 3 rows into 4 slots", 0.0);
  c.batch = 3;
  c.bytes = 4.0 * 2 * static_cast<double>(kv->size());
  c.reference = [=] {
    std::vector<float> k = *kc0, v = *vc0;
    kernels::cpu::kv_store(kv->data(), kv->data() + shape.kv_dim(), 2 * shape.kv_dim(), 3, k.data(),
                           v.data(), shape, slots->data(), pos->data());
    k.insert(k.end(), v.begin(), v.end());
    return k;
  };
  c.launch = [=] {
    kc::copy_to_device(dk->get(), kc0->data(), cache * sizeof(float), stream());
    kc::copy_to_device(dv->get(), vc0->data(), cache * sizeof(float), stream());
    kc::kv_store(dkv->get(), dkv->get() + shape.kv_dim(), 2 * shape.kv_dim(), 3, dk->get(),
                 dv->get(), shape, dslots->get(), dpos->get(), stream());
  };
  c.result = [dk, dv] {
    std::vector<float> k = to_host(*dk);
    const std::vector<float> v = to_host(*dv);
    k.insert(k.end(), v.begin(), v.end());
    return k;
  };
  runner.run(c);
}

// Argmax and sampling: exact, token for token (sample_weight is bit-identical on host and device,
// the sums are integers and the draw is Philox4x32-10 on both sides). Token ids compared as floats
// with tolerance 0: one different token fails the case.
void sampling_cases(Runner& runner) {
  const int vocab = 49152, batch = 16;
  const auto logits = shared_floats(static_cast<std::size_t>(batch) * vocab, 101, -6.0f, 6.0f);
  const auto dl = to_device(*logits);
  auto dtok = std::make_shared<kc::DeviceBuffer<int>>(static_cast<std::size_t>(batch));
  auto tokens_as_floats = [dtok] {
    const auto t = to_host(*dtok);
    return std::vector<float>(t.begin(), t.end());
  };
  {
    Case c = device_case("argmax", "16 x 49152", 0.0);
    c.batch = batch;
    c.bytes = 4.0 * static_cast<double>(logits->size());
    c.reference = [=] {
      std::vector<float> want(static_cast<std::size_t>(batch));
      for (int b = 0; b < batch; ++b)
        want[static_cast<std::size_t>(b)] = static_cast<float>(kernels::cpu::sample(
            logits->data() + static_cast<std::size_t>(b) * vocab, vocab, {}, 0));
      return want;
    };
    c.launch = [=] { kc::argmax(dl->get(), batch, vocab, dtok->get(), stream()); };
    c.result = tokens_as_floats;
    runner.run(c);
  }
  for (int round = 0; round < 8; ++round) {
    auto params =
        std::make_shared<std::vector<kernels::SampleParams>>(static_cast<std::size_t>(batch));
    auto counters = std::make_shared<std::vector<int>>(static_cast<std::size_t>(batch));
    for (int b = 0; b < batch; ++b) {
      const float temps[4] = {0.0f, 0.7f, 1.0f, 1.5f};
      const int ks[4] = {0, 1, 40, 1000};
      const float ps[4] = {1.0f, 0.9f, 0.5f, 0.95f};
      (*params)[static_cast<std::size_t>(b)] =
          kernels::SampleParams{temps[(b + round) % 4], ks[b % 4], ps[(b / 4) % 4], 0,
                                static_cast<std::uint64_t>(1000 + b)};
      (*counters)[static_cast<std::size_t>(b)] = round * 31 + b;
    }
    const auto dp = to_device(*params);
    const auto dc = to_device(*counters);
    Case c = device_case("sample", "16 x 49152, round " + std::to_string(round), 0.0);
    c.batch = batch;
    c.bytes = 4.0 * static_cast<double>(logits->size());
    c.reference = [=] {
      std::vector<float> want(static_cast<std::size_t>(batch));
      for (int b = 0; b < batch; ++b) {
        const auto i = static_cast<std::size_t>(b);
        want[i] =
            static_cast<float>(kernels::cpu::sample(logits->data() + i * vocab, vocab, (*params)[i],
                                                    static_cast<std::uint64_t>((*counters)[i])));
      }
      return want;
    };
    c.launch = [=] {
      kc::sample(dl->get(), batch, vocab, dp->get(), dc->get(), dtok->get(), stream());
    };
    c.result = tokens_as_floats;
    runner.run(c);
  }
}

}  // namespace

void run_cuda_kernel_cases(Runner& runner) {
  const kc::DeviceInfo info = kc::device_info(0);
  std::printf("cuda: device 0 is %s, sm_%d%d, %d SMs\n", info.name.c_str(), info.compute_major,
              info.compute_minor, info.sm_count);
  dequantize_cases(runner);
  rope_cases(runner);
  elementwise_cases(runner);
  kv_store_cases(runner);
  sampling_cases(runner);
}

#else

void run_cuda_kernel_cases(Runner&) {}

#endif

}  // namespace podworker::ops_test

// The CUDA backend's ops (kernels/cuda and the fused kernels of llm/cuda/forward_kernels.h) against
// their references, on seeded random inputs. Built into every test_ops; without CUDA in the build
// there are no cases (main() reports the backend as not built before getting here).
#include <algorithm>
#include <cmath>
#include <memory>

#include "kernels/attention.h"
#include "kernels/dequantize.h"
#include "kernels/device.h"
#include "kernels/gemm.h"
#include "kernels/get_rows.h"
#include "kernels/matvec.h"
#include "kernels/matvec_kquant.h"
#include "kernels/rmsnorm.h"
#include "kernels/rope.h"
#include "kernels/swiglu.h"
#include "op_harness.h"
#if PODWORKER_TEST_OPS_CUDA
#include "cuda_support.h"
#include "llm/cuda/forward_kernels.h"
#endif

namespace podworker::ops_test {

#if PODWORKER_TEST_OPS_CUDA

namespace {

// Quantized mat-vec (decode) per weight type: W dequantized exactly, F32 sums in another order than
// the double reference: NMSE 1e-9.
void matvec_cases(Runner& runner) {
  for (const ModelShape& shape : kShapes) {
    struct M {
      const char* name;
      std::int64_t rows, cols;
    };
    const M mats[] = {{"wq", shape.q_dim(), shape.n_embd},
                      {"w_up", shape.n_ff, shape.n_embd},
                      {"w_down", shape.n_embd, shape.n_ff},
                      {"output", shape.n_vocab, shape.n_embd}};
    for (const M& m : mats) {
      const auto wf = random_floats(static_cast<std::size_t>(m.rows * m.cols), 41);
      for (GgmlType type :
           {GgmlType::q4_0, GgmlType::q4_1, GgmlType::q8_0, GgmlType::f16, GgmlType::f32}) {
        const auto wq = std::make_shared<std::vector<std::byte>>(quantized(type, wf));
        const auto dw = to_device(*wq);
        for (int batch : {1, 8}) {
          const auto x = std::make_shared<std::vector<float>>(
              random_floats(static_cast<std::size_t>(batch * m.cols), 42));
          const auto dx = to_device(*x);
          auto dy =
              std::make_shared<kc::DeviceBuffer<float>>(static_cast<std::size_t>(batch * m.rows));
          Case c = device_case("matvec", std::string(shape.name) + " " + m.name, 1e-9);
          c.type = kernels::type_name(type);
          c.batch = batch;
          c.bytes =
              static_cast<double>(wq->size()) + 4.0 * static_cast<double>(x->size() + dy->size());
          c.reference = [=] {
            std::vector<float> y(dy->size());
            kernels::cpu::matvec(type, wq->data(), m.rows, m.cols, x->data(), y.data(), batch);
            return y;
          };
          c.launch = [=] {
            kc::matvec(type, dw->get(), m.rows, m.cols, dx->get(), dy->get(), batch, false,
                       stream());
          };
          c.result = [dy] { return to_host(*dy); };
          runner.run(c);
        }
      }
    }
  }
}

// The K-quant mat-vec (kernels/matvec_kquant.h) per type, on the shapes whose rows hold whole
// 256-element super-blocks, at batch 1, 3 (a masked tail of the 4-column kernel) and 8, with and
// without the fused residual add. The weights are exactly the reference's dequantized values and
// the F32 sums run in another order than the double reference: NMSE 1e-9, as matvec. A wrong
// nibble, fifth/sixth bit, scale or sub-block gives an NMSE near 1.
void kquant_matvec_cases(Runner& runner) {
  struct M {
    const ModelShape* shape;
    const char* name;
    std::int64_t rows, cols;
  };
  const ModelShape& small = kShapes[0];
  const ModelShape& large = kShapes[1];
  const M mats[] = {{&small, "w_down", small.n_embd, small.n_ff},
                    {&large, "wq", large.q_dim(), large.n_embd},
                    {&large, "w_down", large.n_embd, large.n_ff}};
  for (const M& m : mats) {
    const auto wf = random_floats(static_cast<std::size_t>(m.rows * m.cols), 43);
    for (GgmlType type : {GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k}) {
      const auto wq = std::make_shared<std::vector<std::byte>>(quantized(type, wf));
      const auto dw = to_device(*wq);
      for (int batch : {1, 3, 8}) {
        for (const bool accumulate : {false, true}) {
          if (accumulate && batch != 3) continue;
          const auto x = std::make_shared<std::vector<float>>(
              random_floats(static_cast<std::size_t>(batch * m.cols), 44));
          const auto y0 = std::make_shared<std::vector<float>>(
              random_floats(static_cast<std::size_t>(batch * m.rows), 45));
          const auto dx = to_device(*x);
          const auto dy = to_device(*y0);
          Case c = device_case(accumulate ? "matvec_kquant+add" : "matvec_kquant",
                               std::string(m.shape->name) + " " + m.name, 1e-9);
          c.type = kernels::type_name(type);
          c.batch = batch;
          c.bytes =
              static_cast<double>(wq->size()) + 4.0 * static_cast<double>(x->size() + dy->size());
          c.reference = [=] {
            std::vector<float> y = *y0;
            kernels::cpu::matvec(type, wq->data(), m.rows, m.cols, x->data(), y.data(), batch,
                                 accumulate);
            return y;
          };
          // The accumulating case restores y first, so every timed launch adds to the same start.
          c.launch = [=] {
            if (accumulate)
              kc::copy_to_device(dy->get(), y0->data(), y0->size() * sizeof(float), stream());
            kc::matvec_kquant(type, dw->get(), m.rows, m.cols, dx->get(), dy->get(), batch,
                              accumulate, stream());
          };
          c.result = [dy] { return to_host(*dy); };
          runner.run(c);
        }
      }
    }
  }
  // Rows of 576 hold no super-block: refused, not misread.
  const auto dw = std::make_shared<kc::DeviceBuffer<std::byte>>(
      kernels::tensor_bytes(GgmlType::q4_k, 512));
  kc::DeviceBuffer<float> dx(576), dy(1);
  bool refused = false;
  try {
    kc::matvec_kquant(GgmlType::q4_k, dw->get(), 1, 576, dx.get(), dy.get(), 1, false, stream());
  } catch (const std::invalid_argument&) {
    refused = true;
  }
  Case c = device_case("matvec_kquant refuses k % 256 != 0", "-", 0);
  c.reference = [] { return std::vector<float>{1.0f}; };
  c.launch = [] {};
  c.result = [refused] { return std::vector<float>{refused ? 1.0f : 0.0f}; };
  runner.run(c);
}

// The prefill GEMM on F16 copies: the reference sees the same F16-rounded W and X, so only the
// summation order differs: NMSE 1e-8.
void gemm_cases(Runner& runner) {
  for (const ModelShape& shape : kShapes) {
    const std::int64_t rows = shape.n_ff, k = shape.n_embd, tokens = 64;
    auto w16 =
        std::make_shared<std::vector<kernels::half_bits>>(static_cast<std::size_t>(rows * k));
    auto x16 =
        std::make_shared<std::vector<kernels::half_bits>>(static_cast<std::size_t>(tokens * k));
    const auto wf = random_floats(w16->size(), 51), xf = random_floats(x16->size(), 52);
    for (std::size_t i = 0; i < wf.size(); ++i) (*w16)[i] = kernels::fp32_to_fp16(wf[i]);
    for (std::size_t i = 0; i < xf.size(); ++i) (*x16)[i] = kernels::fp32_to_fp16(xf[i]);
    const auto dw = to_device(*w16), dx = to_device(*x16);
    auto dy = std::make_shared<kc::DeviceBuffer<float>>(static_cast<std::size_t>(tokens * rows));
    auto handle = std::make_shared<kc::CublasHandle>();
    Case c = device_case("gemm_f16", std::string(shape.name) + " w_up", 1e-8);
    c.type = "f16";
    c.batch = static_cast<int>(tokens);
    c.bytes = 2.0 * static_cast<double>(w16->size() + x16->size()) +
              4.0 * static_cast<double>(dy->size());
    c.reference = [=] {
      std::vector<float> y(dy->size());
      const auto x = halves_to_floats(*x16);
      kernels::cpu::matvec(GgmlType::f16, w16->data(), rows, k, x.data(), y.data(),
                           static_cast<int>(tokens));
      return y;
    };
    c.launch = [=] {
      kc::gemm(*handle, GgmlType::f16, dw->get(), rows, k, dx->get(), tokens, dy->get(), 0.0f,
               stream());
    };
    c.result = [dy] { return to_host(*dy); };
    runner.run(c);
  }
}

// RMSNorm (NMSE 1e-10: one rsqrt) and its F16-writing fused form (NMSE 1e-6: a value near a
// rounding boundary may land one F16 step away).
void rmsnorm_cases(Runner& runner) {
  for (const ModelShape& shape : kShapes) {
    const int rows = 64, d = shape.n_embd;
    const auto x = std::make_shared<std::vector<float>>(
        random_floats(static_cast<std::size_t>(rows * d), 61, -2, 2));
    const auto g = std::make_shared<std::vector<float>>(
        random_floats(static_cast<std::size_t>(d), 62, 0.5f, 1.5f));
    const auto dx = to_device(*x), dg = to_device(*g);
    auto dy = std::make_shared<kc::DeviceBuffer<float>>(x->size());
    Case c = device_case("rmsnorm", std::string(shape.name) + " 64 rows", 1e-10);
    c.batch = rows;
    c.bytes = 8.0 * static_cast<double>(x->size());
    c.reference = [=] {
      std::vector<float> y(x->size());
      kernels::cpu::rmsnorm(x->data(), g->data(), y.data(), rows, d, 1e-5f);
      return y;
    };
    c.launch = [=] { kc::rmsnorm(dx->get(), dg->get(), dy->get(), rows, d, 1e-5f, stream()); };
    c.result = [dy] { return to_host(*dy); };
    runner.run(c);

    auto dh = std::make_shared<kc::DeviceBuffer<kernels::half_bits>>(x->size());
    Case h = device_case("rmsnorm_to_f16", std::string(shape.name) + " 64 rows", 1e-6);
    h.batch = rows;
    h.bytes = 6.0 * static_cast<double>(x->size());
    h.reference = [=] {
      std::vector<kernels::half_bits> y(x->size());
      kernels::cpu::rmsnorm_to_f16(x->data(), g->data(), y.data(), rows, d, 1e-5f);
      return halves_to_floats(y);
    };
    h.launch = [=] {
      llm::cuda::rmsnorm_to_f16(dx->get(), dg->get(), dh->get(), rows, d, 1e-5f, stream());
    };
    h.result = [dh] { return halves_to_floats(to_host(*dh)); };
    runner.run(h);
  }
}

// RoPE + KV store on a fused QKV buffer: angles in double on both sides, NMSE 1e-10 over the
// rotated buffer and both caches.
void rope_store_cases(Runner& runner) {
  for (const ModelShape& shape : kShapes) {
    const int rows = 8, slots_n = 4;
    const kernels::AttentionShape as{shape.n_head, shape.n_head_kv, shape.head_dim, 300, slots_n};
    const std::int64_t stride = shape.q_dim() + 2 * shape.kv_dim();
    const auto qkv = std::make_shared<std::vector<float>>(
        random_floats(static_cast<std::size_t>(rows * stride), 71));
    const auto slots = std::make_shared<std::vector<int>>(std::vector<int>{0, 3, 1, 2, 3, 0, 1, 2});
    const auto pos =
        std::make_shared<std::vector<int>>(std::vector<int>{0, 299, 5, 6, 17, 123, 250, 1});
    const std::size_t cache = static_cast<std::size_t>(slots_n * as.max_ctx * as.kv_dim());
    const auto dqkv = std::make_shared<kc::DeviceBuffer<float>>(qkv->size());
    const auto dk = std::make_shared<kc::DeviceBuffer<float>>(cache),
               dv = std::make_shared<kc::DeviceBuffer<float>>(cache);
    const auto dslots = to_device(*slots), dpos = to_device(*pos);
    Case c = device_case("rope_store", std::string(shape.name) + " 8 rows", 1e-10);
    c.batch = rows;
    c.bytes = 4.0 * static_cast<double>(2 * rows * (shape.q_dim() + shape.kv_dim()) +
                                        2 * rows * shape.kv_dim());
    const float base = 100000.0f;
    c.reference = [=] {
      std::vector<float> b = *qkv, k(cache, 0.0f), v(cache, 0.0f);
      kernels::cpu::rope_store(b.data(), stride, rows, as, base, k.data(), v.data(), slots->data(),
                               pos->data());
      b.insert(b.end(), k.begin(), k.end());
      b.insert(b.end(), v.begin(), v.end());
      return b;
    };
    // Each launch starts from the unrotated rows (rotating twice is another op).
    c.launch = [=] {
      kc::copy_to_device(dqkv->get(), qkv->data(), qkv->size() * sizeof(float), stream());
      const llm::cuda::RopeStoreShape rs{shape.n_head, shape.n_head_kv, shape.head_dim, as.max_ctx,
                                         base, slots_n};
      llm::cuda::rope_store(dqkv->get(), stride, rows, rs, dk->get(), dv->get(), dslots->get(),
                            dpos->get(), stream());
    };
    c.result = [=] {
      kc::memset_device(dk->get(), 0, dk->bytes(), stream());
      kc::memset_device(dv->get(), 0, dv->bytes(), stream());
      c.launch();
      std::vector<float> b = to_host(*dqkv), k = to_host(*dk), v = to_host(*dv);
      b.insert(b.end(), k.begin(), k.end());
      b.insert(b.end(), v.begin(), v.end());
      return b;
    };
    runner.run(c);
  }
}

// SwiGLU over the fused gate|up rows, to F32 (NMSE 1e-10: one expf) and to F16 (NMSE 1e-6).
void swiglu_cases(Runner& runner) {
  for (const ModelShape& shape : kShapes) {
    const int rows = 8, ff = shape.n_ff;
    const auto gu = std::make_shared<std::vector<float>>(
        random_floats(static_cast<std::size_t>(rows * 2 * ff), 81, -4, 4));
    const auto dgu = to_device(*gu);
    auto reference = [=] {
      std::vector<float> y(static_cast<std::size_t>(rows * ff));
      kernels::cpu::swiglu_rows(gu->data(), rows, ff, y.data());
      return y;
    };
    auto dy = std::make_shared<kc::DeviceBuffer<float>>(static_cast<std::size_t>(rows * ff));
    Case c = device_case("swiglu_rows", std::string(shape.name) + " 8 rows", 1e-10);
    c.batch = rows;
    c.bytes = 12.0 * rows * ff;
    c.reference = reference;
    c.launch = [=] { llm::cuda::swiglu_fused(dgu->get(), rows, ff, dy->get(), stream()); };
    c.result = [dy] { return to_host(*dy); };
    runner.run(c);

    auto dh =
        std::make_shared<kc::DeviceBuffer<kernels::half_bits>>(static_cast<std::size_t>(rows * ff));
    Case h = device_case("swiglu_rows_f16", std::string(shape.name) + " 8 rows", 1e-6);
    h.batch = rows;
    h.bytes = 10.0 * rows * ff;
    h.reference = reference;
    h.launch = [=] { llm::cuda::swiglu_fused(dgu->get(), rows, ff, dh->get(), stream()); };
    h.result = [dh] { return halves_to_floats(to_host(*dh)); };
    runner.run(h);
  }
}

// Attention: decode (the kernels/cuda kernel and the latency kernel of llm/cuda) over sequences of
// different slots and lengths, and causal prefill; F32 against the double reference, NMSE 1e-9.
void attention_cases(Runner& runner) {
  for (const ModelShape& shape : kShapes) {
    const int slots_n = 4, batch = 4;
    const kernels::AttentionShape as{shape.n_head, shape.n_head_kv, shape.head_dim, 1024, slots_n};
    const std::size_t cache = static_cast<std::size_t>(slots_n * as.max_ctx * as.kv_dim());
    const auto k = std::make_shared<std::vector<float>>(random_floats(cache, 91));
    const auto v = std::make_shared<std::vector<float>>(random_floats(cache, 92));
    const auto dk = to_device(*k), dv = to_device(*v);
    const std::int64_t q_stride = shape.q_dim() + 2 * shape.kv_dim();
    const auto q = std::make_shared<std::vector<float>>(
        random_floats(static_cast<std::size_t>(batch * q_stride), 93));
    const auto slots = std::make_shared<std::vector<int>>(std::vector<int>{2, 0, 3, 1});
    const auto lens = std::make_shared<std::vector<int>>(std::vector<int>{1, 1024, 129, 64});
    const auto dq = to_device(*q);
    const auto dslots = to_device(*slots), dlens = to_device(*lens);
    const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
    auto out =
        std::make_shared<kc::DeviceBuffer<float>>(static_cast<std::size_t>(batch * as.q_dim()));
    const auto reference = [=] {
      std::vector<float> y(out->size());
      kernels::cpu::attention_decode(q->data(), q_stride, k->data(), v->data(), y.data(), batch, as,
                                     slots->data(), lens->data(), scale);
      return y;
    };
    double visible = 0;
    for (int l : *lens) visible += l;
    const double bytes = 2.0 * 4.0 * visible * as.kv_dim();
    Case c = device_case("attention_decode", std::string(shape.name) + " 4 seqs", 1e-9);
    c.batch = batch;
    c.bytes = bytes;
    c.reference = reference;
    c.launch = [=] {
      kc::attention_decode(dq->get(), q_stride, dk->get(), dv->get(), out->get(), batch, as,
                           dslots->get(), dlens->get(), scale, stream());
    };
    c.result = [out] { return to_host(*out); };
    runner.run(c);

    if (llm::cuda::decode_attention_supported(shape.head_dim, as.max_ctx)) {
      llm::cuda::prepare_decode_attention(shape.head_dim, as.max_ctx);
      Case f = c;
      f.impl = "latency";
      f.launch = [=] {
        llm::cuda::decode_attention(dq->get(), q_stride, dk->get(), dv->get(), out->get(), batch,
                                    shape.n_head, shape.n_head_kv, shape.head_dim, as.max_ctx,
                                    slots_n, dslots->get(), dlens->get(), scale, stream());
      };
      runner.run(f);
    }

    const std::int64_t tokens = 64;
    const int start = 100, slot = 1;
    const auto qp = std::make_shared<std::vector<float>>(
        random_floats(static_cast<std::size_t>(tokens * q_stride), 94));
    const auto dqp = to_device(*qp);
    auto outp =
        std::make_shared<kc::DeviceBuffer<float>>(static_cast<std::size_t>(tokens * as.q_dim()));
    Case p = device_case("attention_prefill", std::string(shape.name) + " 64 at 100", 1e-9);
    p.batch = static_cast<int>(tokens);
    p.bytes = 2.0 * 4.0 * static_cast<double>(start + tokens) * as.kv_dim();
    p.reference = [=] {
      std::vector<float> y(outp->size());
      kernels::cpu::attention_prefill(qp->data(), q_stride, k->data(), v->data(), y.data(), tokens,
                                      as, slot, start, scale);
      return y;
    };
    p.launch = [=] {
      kc::attention_prefill(dqp->get(), q_stride, dk->get(), dv->get(), outp->get(), tokens, as,
                            slot, start, scale, stream());
    };
    p.result = [outp] { return to_host(*outp); };
    runner.run(p);
  }
}

// Embedding rows: a copy of dequantized values, exact.
void get_rows_cases(Runner& runner) {
  const ModelShape& shape = kShapes[0];
  const auto table = random_floats(
      static_cast<std::size_t>(shape.n_vocab) * static_cast<std::size_t>(shape.n_embd), 95);
  const auto ids = std::make_shared<std::vector<int>>(
      std::vector<int>{0, shape.n_vocab - 1, 17, 17, 512, 9, 3, 4});
  const auto dids = to_device(*ids);
  for (GgmlType type : {GgmlType::q8_0, GgmlType::q4_1, GgmlType::f16, GgmlType::f32}) {
    const auto q = std::make_shared<std::vector<std::byte>>(quantized(type, table));
    const auto dt = to_device(*q);
    auto out = std::make_shared<kc::DeviceBuffer<float>>(ids->size() *
                                                         static_cast<std::size_t>(shape.n_embd));
    Case c = device_case("get_rows", std::string(shape.name) + " token_embd", 1e-14);
    c.type = kernels::type_name(type);
    c.batch = static_cast<int>(ids->size());
    c.bytes = 4.0 * static_cast<double>(out->size()) * 2;
    c.reference = [=] {
      std::vector<float> y(out->size());
      kernels::cpu::get_rows(type, q->data(), shape.n_vocab, shape.n_embd, ids->data(),
                             static_cast<std::int64_t>(ids->size()), y.data());
      return y;
    };
    c.launch = [=] {
      kc::get_rows(type, dt->get(), shape.n_vocab, shape.n_embd, dids->get(),
                   static_cast<std::int64_t>(ids->size()), out->get(), stream());
    };
    c.result = [out] { return to_host(*out); };
    runner.run(c);
  }
}

}  // namespace

void run_cuda_cases(Runner& runner) {
  get_rows_cases(runner);
  rmsnorm_cases(runner);
  rope_store_cases(runner);
  attention_cases(runner);
  swiglu_cases(runner);
  gemm_cases(runner);
  matvec_cases(runner);
  kquant_matvec_cases(runner);
}

double cuda_bandwidth_gbs() {
  const std::size_t bytes = std::size_t{1} << 30;
  kc::DeviceBuffer<std::byte> a(bytes), b(bytes);
  kc::Event start, stop;
  double best = 0;
  for (int i = 0; i < 3; ++i) {
    start.record(stream());
    kc::copy_device_to_device(b.get(), a.get(), bytes, stream());
    stop.record(stream());
    stop.synchronize();
    best = std::max(best, 2.0 * static_cast<double>(bytes) / (kc::elapsed_ms(start, stop) * 1e6));
  }
  return best;
}

#else

void run_cuda_cases(Runner&) {}
double cuda_bandwidth_gbs() {
  return 0;
}

#endif

}  // namespace podworker::ops_test

// The fast CPU backend's own op implementations (llm/cpu: the 8-bit-activation matmul per weight
// type (the K-quant and Q5_0 products too), the activation quantization, attention; llm/sampling.h:
// the host sampler), for every instruction set this CPU runs, against their references. The CPU
// backend's other ops (RMSNorm, RoPE + KV store, SwiGLU, get_rows, the residual add) are calls of
// the references themselves.
#include <cmath>
#include <memory>

#include "kernels/attention.h"
#include "kernels/dequantize.h"
#include "kernels/matvec.h"
#include "kernels/sampling.h"
#include "llm/cpu/matmul.h"
#include "llm/cpu/matmul_kquant.h"
#include "llm/sampling.h"
#include "op_harness.h"

namespace podworker::ops_test {

namespace {

using kernels::GgmlType;
using llm::cpu::ActBlock;
using llm::cpu::CpuKernels;

std::vector<CpuKernels> kernel_sets() {
  std::vector<CpuKernels> sets = {llm::cpu::scalar_kernels()};
  if (llm::cpu::cpu_supports_avx2() && llm::cpu::avx2_kernels().q4_1)
    sets.push_back(llm::cpu::avx2_kernels());
  if (llm::cpu::cpu_supports_avx512() && llm::cpu::avx512_kernels().q4_1)
    sets.push_back(llm::cpu::avx512_kernels());
  return sets;
}

std::vector<std::byte> quantized(GgmlType type, const std::vector<float>& x, std::int64_t rows,
                                 std::int64_t cols) {
  const std::size_t row_bytes = kernels::tensor_bytes(type, cols);
  std::vector<std::byte> q(row_bytes * static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    kernels::cpu::quantize(type, x.data() + r * cols,
                           q.data() + static_cast<std::size_t>(r) * row_bytes, cols);
  }
  return q;
}

llm::cpu::MatmulFn matmul_of(const CpuKernels& k, GgmlType t) {
  return t == GgmlType::q4_0 ? k.q4_0 : t == GgmlType::q4_1 ? k.q4_1 : k.q8_0;
}

struct Matrix {
  const char* name;
  std::int64_t rows, cols;
};

// A case of y = W round_to_q8_blocks(x) (W of `type`, m.rows x m.cols, in w; batch rows of x) for
// one implementation, all but its launch, which writes out. The reference is computed once into
// want, which the implementations of one (matrix, batch) share.
Case make_matmul_q8act_case(std::string op, std::string impl, std::string shape, GgmlType type,
                            const Matrix& m, int batch,
                            std::shared_ptr<const std::vector<std::byte>> w,
                            std::shared_ptr<const std::vector<float>> x,
                            std::shared_ptr<std::vector<float>> want,
                            std::shared_ptr<std::vector<float>> out) {
  Case c;
  c.op = std::move(op);
  c.impl = std::move(impl);
  c.shape = std::move(shape);
  c.type = kernels::type_name(type);
  c.batch = batch;
  c.nmse_tolerance = 1e-10;
  c.bytes = static_cast<double>(w->size()) + 4.0 * static_cast<double>(x->size() + out->size());
  c.reference = [=] {
    if (want->empty()) {
      std::vector<float> xr(x->size());
      kernels::cpu::round_to_q8_blocks(x->data(), xr.data(), static_cast<std::int64_t>(x->size()));
      want->resize(out->size());
      kernels::cpu::matvec(type, w->data(), m.rows, m.cols, xr.data(), want->data(), batch);
    }
    return *want;
  };
  c.result = [out] { return *out; };
  return c;
}

// The 8-bit-activation matmul: y = W round_to_q8_blocks(x). The reference rounds the activations
// the same way, so the only difference left is F32 summation order: NMSE 1e-10 (seen: below 2e-12;
// a wrong block, scale or nibble order gives NMSE near 1).
void matmul_cases(Runner& runner, const std::vector<CpuKernels>& sets) {
  for (const ModelShape& shape : kShapes) {
    const bool large = shape.n_embd > 1024;
    std::vector<Matrix> mats = {{"wq", shape.q_dim(), shape.n_embd},
                                {"w_up", shape.n_ff, shape.n_embd},
                                {"w_down", shape.n_embd, shape.n_ff}};
    if (!large) mats.push_back({"output", shape.n_vocab, shape.n_embd});
    for (const Matrix& m : mats) {
      const auto wf = random_floats(static_cast<std::size_t>(m.rows * m.cols), 11);
      for (GgmlType type : {GgmlType::q4_0, GgmlType::q4_1, GgmlType::q8_0}) {
        const auto w =
            std::make_shared<std::vector<std::byte>>(quantized(type, wf, m.rows, m.cols));
        const std::size_t row_bytes = kernels::tensor_bytes(type, m.cols);
        for (int batch : {1, large ? 4 : 8}) {
          const auto x = std::make_shared<std::vector<float>>(
              random_floats(static_cast<std::size_t>(batch * m.cols), 12));
          auto want = std::make_shared<std::vector<float>>();
          for (const CpuKernels& set : sets) {
            const int nb = static_cast<int>(m.cols / 32);
            auto acts =
                std::make_shared<std::vector<ActBlock>>(static_cast<std::size_t>(batch * nb));
            auto out =
                std::make_shared<std::vector<float>>(static_cast<std::size_t>(batch * m.rows));
            Case c = make_matmul_q8act_case("matmul_q8act", set.name,
                                            std::string(shape.name) + " " + m.name, type, m, batch,
                                            w, x, want, out);
            const auto fn = matmul_of(set, type);
            const auto quantize = set.quantize;
            const std::int64_t rows = m.rows, cols = m.cols;
            c.launch = [=] {
              for (int b = 0; b < batch; ++b) {
                quantize(x->data() + static_cast<std::size_t>(b * cols),
                         acts->data() + static_cast<std::size_t>(b * nb), static_cast<int>(cols));
              }
              fn(w->data(), row_bytes, nb, 0, static_cast<int>(rows), acts->data(), batch,
                 out->data(), static_cast<std::size_t>(rows));
            };
            runner.run(c);
            if (batch == 1 && std::string(set.name) == "avx512-vnni" && sets.size() > 1 &&
                type != GgmlType::q4_0) {
              // The AVX-512 batch-1 Q4_1 and Q8_0 products keep a row pair in one 512-bit vector
              // and must sum exactly as the AVX2 row pairs: their reference is the AVX2 output
              // (checked against the f32 reference above), bit for bit. Two calls split at an odd
              // row, as a thread's share can start, cover the pairs and the single-row tail.
              const auto avx2 = matmul_of(sets[sets.size() - 2], type);
              const int split = static_cast<int>(rows / 2) | 1;
              const auto run = [=](llm::cpu::MatmulFn f, float* o) {
                f(w->data(), row_bytes, nb, 0, split, acts->data(), 1, o,
                  static_cast<std::size_t>(rows));
                f(w->data(), row_bytes, nb, split, static_cast<int>(rows), acts->data(), 1, o,
                  static_cast<std::size_t>(rows));
              };
              Case z = make_matmul_q8act_case("matmul_q8act", "avx512-vnni = avx2",
                                              std::string(shape.name) + " " + m.name, type, m, 1,
                                              w, x, want, out);
              z.nmse_tolerance = 0;
              z.reference = [=] {
                quantize(x->data(), acts->data(), static_cast<int>(cols));
                std::vector<float> o(out->size());
                run(avx2, o.data());
                return o;
              };
              z.launch = [=] {
                quantize(x->data(), acts->data(), static_cast<int>(cols));
                run(fn, out->data());
              };
              runner.run(z);
            }
          }
        }
      }
    }
  }
}

// The K-quant and Q5_0 products (llm/cpu/matmul_kquant.h), portable, AVX2 and AVX512-VNNI, on the
// matrices whose rows the type's block divides (SmolLM2's 576-wide rows take only Q5_0, llama.cpp's
// fallback). Against the same reference as matmul_q8act: the products sum integers exactly and
// differ from the f32 dot of the dequantized rows only in the order of the f32 additions, so the
// same NMSE 1e-10. Batches 1, 2, 3 and 5 cover every column count of the AVX2 passes (4 at a time,
// then the rest).
void kquant_matmul_cases(Runner& runner) {
  struct Impl {
    const char* name;
    decltype(&llm::cpu::matmul_kquant_scalar) fn;
  };
  std::vector<Impl> impls = {{"portable", &llm::cpu::matmul_kquant_scalar}};
  if (llm::cpu::kquant_avx2_compiled() && llm::cpu::cpu_supports_avx2())
    impls.push_back({"avx2", &llm::cpu::matmul_kquant_avx2});
  if (llm::cpu::kquant_avx512_compiled() && llm::cpu::cpu_supports_avx512())
    impls.push_back({"avx512-vnni", &llm::cpu::matmul_kquant_avx512});
  const ModelShape& small = kShapes[0];
  const ModelShape& large = kShapes[1];
  struct Shaped {
    const ModelShape* shape;
    Matrix m;
  };
  const Shaped mats[] = {{&small, {"wq", small.q_dim(), small.n_embd}},
                         {&small, {"w_down", small.n_embd, small.n_ff}},
                         {&small, {"output", small.n_vocab, small.n_embd}},
                         {&large, {"wq", large.q_dim(), large.n_embd}}};
  for (const Shaped& sm : mats) {
    const Matrix& m = sm.m;
    const bool big = m.rows * m.cols > (std::int64_t{1} << 22);
    const auto wf = random_floats(static_cast<std::size_t>(m.rows * m.cols), 13);
    for (GgmlType type : {GgmlType::q4_k, GgmlType::q5_k, GgmlType::q6_k, GgmlType::q5_0}) {
      if (m.cols % kernels::block_elements(type) != 0) continue;
      const auto w = std::make_shared<std::vector<std::byte>>(quantized(type, wf, m.rows, m.cols));
      const std::size_t row_bytes = kernels::tensor_bytes(type, m.cols);
      const std::vector<int> batches = big ? std::vector<int>{1, 5} : std::vector<int>{1, 2, 3, 5};
      for (int batch : batches) {
        const auto x = std::make_shared<std::vector<float>>(
            random_floats(static_cast<std::size_t>(batch * m.cols), 14));
        const int nb = static_cast<int>(m.cols / 32);
        // The activations once, with the reference rounding the fast quantizers match exactly.
        auto acts = std::make_shared<std::vector<ActBlock>>(static_cast<std::size_t>(batch * nb));
        const auto quantize = llm::cpu::scalar_kernels().quantize;
        for (int b = 0; b < batch; ++b) {
          quantize(x->data() + static_cast<std::size_t>(b) * static_cast<std::size_t>(m.cols),
                   acts->data() + static_cast<std::size_t>(b * nb), static_cast<int>(m.cols));
        }
        auto want = std::make_shared<std::vector<float>>();
        for (const Impl& impl : impls) {
          auto out = std::make_shared<std::vector<float>>(static_cast<std::size_t>(batch * m.rows));
          Case c = make_matmul_q8act_case("matmul_kquant", impl.name,
                                          std::string(sm.shape->name) + " " + m.name, type, m,
                                          batch, w, x, want, out);
          const std::int64_t rows = m.rows;
          // Two calls over row ranges, as the thread split makes them.
          const auto run = [=](decltype(impl.fn) fn, float* o) {
            const int half = static_cast<int>(rows / 2);
            fn(type, w->data(), row_bytes, nb, 0, half, acts->data(), batch, o,
               static_cast<std::size_t>(rows));
            fn(type, w->data(), row_bytes, nb, half, static_cast<int>(rows), acts->data(), batch, o,
               static_cast<std::size_t>(rows));
          };
          if (impl.fn == &llm::cpu::matmul_kquant_avx512) {
            // The VNNI build sums the same integers in the same float order as the AVX2 one: its
            // reference is the AVX2 output (itself checked against the f32 reference above), bit
            // for bit.
            c.nmse_tolerance = 0;
            c.reference = [=] {
              std::vector<float> o(out->size());
              run(&llm::cpu::matmul_kquant_avx2, o.data());
              return o;
            };
          }
          const auto fn = impl.fn;
          c.launch = [=] { run(fn, out->data()); };
          runner.run(c);
        }
      }
    }
  }
}

// Activation quantization: the fast versions must round exactly as the reference (tolerance 0 up to
// the F32 product d * q).
void quantize_cases(Runner& runner, const std::vector<CpuKernels>& sets) {
  for (const ModelShape& shape : kShapes) {
    const auto x = std::make_shared<std::vector<float>>(
        random_floats(static_cast<std::size_t>(shape.n_ff), 21, -3, 3));
    for (const CpuKernels& set : sets) {
      auto acts =
          std::make_shared<std::vector<ActBlock>>(static_cast<std::size_t>(shape.n_ff / 32));
      Case c;
      c.op = "quantize_q8act";
      c.impl = set.name;
      c.shape = std::string(shape.name) + " ffn row";
      c.nmse_tolerance = 1e-14;
      c.bytes = 4.0 * static_cast<double>(x->size()) +
                static_cast<double>(acts->size() * sizeof(ActBlock));
      c.reference = [x] {
        std::vector<float> r(x->size());
        kernels::cpu::round_to_q8_blocks(x->data(), r.data(), static_cast<std::int64_t>(x->size()));
        return r;
      };
      const auto quantize = set.quantize;
      c.launch = [=] { quantize(x->data(), acts->data(), static_cast<int>(x->size())); };
      c.result = [acts] {
        std::vector<float> r;
        for (const ActBlock& b : *acts) {
          for (std::int8_t q : b.qs) r.push_back(b.d * static_cast<float>(q));
        }
        return r;
      };
      runner.run(c);
    }
  }
}

// One attention head over a cache: F32 scores and sums against the double reference, NMSE 1e-10.
// Besides the models' head sizes, sizes with 8- and 32-float tails (40, 12, 3) over odd strides
// exercise the SIMD loops' remainders.
void attention_cases(Runner& runner, const std::vector<CpuKernels>& sets) {
  struct Head {
    std::string name;
    int head_dim;
    std::int64_t stride;
  };
  std::vector<Head> heads;
  for (const ModelShape& shape : kShapes)
    heads.push_back({shape.name, shape.head_dim, shape.kv_dim()});
  for (int hd : {40, 12, 3}) heads.push_back({"head_dim " + std::to_string(hd), hd, 3 * hd + 5});
  for (const Head& shape : heads) {
    for (int len : {1, 7, 37, 1000}) {
      const std::int64_t stride = shape.stride;
      const auto q = std::make_shared<std::vector<float>>(
          random_floats(static_cast<std::size_t>(shape.head_dim), 31));
      const auto k = std::make_shared<std::vector<float>>(
          random_floats(static_cast<std::size_t>(len * stride), 32));
      const auto v = std::make_shared<std::vector<float>>(
          random_floats(static_cast<std::size_t>(len * stride), 33));
      const float scale = 1.0f / std::sqrt(static_cast<float>(shape.head_dim));
      for (const CpuKernels& set : sets) {
        auto out = std::make_shared<std::vector<float>>(static_cast<std::size_t>(shape.head_dim));
        auto scores = std::make_shared<std::vector<float>>(static_cast<std::size_t>(len));
        Case c;
        c.op = "attention_head";
        c.impl = set.name;
        c.shape = shape.name + " len " + std::to_string(len);
        c.nmse_tolerance = 1e-10;
        c.bytes = 2.0 * 4.0 * static_cast<double>(len) * shape.head_dim;
        c.reference = [=] {
          std::vector<float> r(out->size());
          kernels::cpu::attend_head(q->data(), k->data(), v->data(), len, stride, shape.head_dim,
                                    scale, r.data());
          return r;
        };
        const auto attend = set.attend;
        const int hd = shape.head_dim;
        c.launch = [=] {
          attend(q->data(), k->data(), v->data(), len, static_cast<std::size_t>(stride), hd, scale,
                 scores->data(), out->data());
        };
        c.result = [out] { return *out; };
        runner.run(c);
      }
    }
  }
}

// Sampling (kernels/sampling.h): the fast host sampler must pick exactly the reference's token for
// every (logits, parameters, counter): tolerance 0, 64 draws per parameter set.
void sampling_cases(Runner& runner) {
  struct P {
    const char* name;
    float temperature;
    int top_k;
    float top_p;
  };
  const P params[] = {{"greedy", 0, 0, 1},
                      {"t0.7", 0.7f, 0, 1},
                      {"t1 k40 p0.9", 1.0f, 40, 0.9f},
                      {"t1.5 p0.5", 1.5f, 0, 0.5f}};
  for (const ModelShape& shape : kShapes) {
    const auto logits = std::make_shared<std::vector<float>>(
        random_floats(static_cast<std::size_t>(shape.n_vocab), 41, -8, 8));
    for (const P& p : params) {
      auto tokens = std::make_shared<std::vector<float>>(64);
      auto scratch = std::make_shared<std::vector<std::uint64_t>>();
      llm::SampleSpec spec;
      spec.params = {p.temperature, p.top_k, p.top_p, 1234};
      Case c;
      c.op = "sample";
      c.impl = "host";
      c.shape = std::string(shape.name) + " " + p.name;
      c.batch = 64;
      c.nmse_tolerance = 0;
      c.bytes = 4.0 * static_cast<double>(logits->size()) * 64;
      c.reference = [=] {
        std::vector<float> r;
        for (int i = 0; i < 64; ++i) {
          r.push_back(static_cast<float>(kernels::cpu::sample(logits->data(), shape.n_vocab,
                                                              llm::to_kernel_params(spec.params),
                                                              static_cast<std::uint64_t>(i))));
        }
        return r;
      };
      c.launch = [=] {
        llm::SampleSpec s = spec;
        for (int i = 0; i < 64; ++i) {
          s.step = static_cast<std::uint64_t>(i);
          (*tokens)[static_cast<std::size_t>(i)] =
              static_cast<float>(llm::sample_token(*logits, s, *scratch));
        }
      };
      c.result = [tokens] { return *tokens; };
      runner.run(c);
    }
  }
}

}  // namespace

void run_cpu_cases(Runner& runner) {
  const std::vector<CpuKernels> sets = kernel_sets();
  sampling_cases(runner);
  quantize_cases(runner, sets);
  attention_cases(runner, sets);
  matmul_cases(runner, sets);
  kquant_matmul_cases(runner);
}

}  // namespace podworker::ops_test

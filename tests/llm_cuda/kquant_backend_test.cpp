// The CUDA backend on K-quant weights (dequantized to F16 at load, kernels/cuda/kquant.cuh) against
// the CPU backend's K-quant products, on a generated model: prefill logits agree within the 5 % the
// other backend tests allow (see cuda_backend_test.cpp for why the two differ at all).
#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "backend_fixture.h"
#include "llm/backend.h"
#include "llm/cpu_backend.h"
#include "llm/weights.h"
#include "model/test_model.h"

using namespace podworker;

TEST_SUITE("gpu") {
  TEST_CASE("K-quant and Q5_0 weights: CUDA prefill logits match the CPU backend") {
    if (!test::have_gpu()) {
      MESSAGE("no CUDA device (or CUDA not built): skipped");
      return;
    }
    for (const kernels::GgmlType t : {kernels::GgmlType::q4_k, kernels::GgmlType::q5_k, kernels::GgmlType::q6_k,
                                      kernels::GgmlType::q5_0}) {
      CAPTURE(kernels::type_name(t));
      model::TestModelSpec spec;
      spec.hidden = 256;
      spec.layers = 2;
      spec.heads = 8;
      spec.kv_heads = 2;
      spec.ffn = 512;
      spec.context = 128;
      spec.weight_type = t;
      const auto w = test::make_weights(spec);
      const llm::BackendOptions o = test::options(2, 128);
      auto cpu = llm::make_cpu_backend(w, o);
      auto gpu = llm::make_backend(w, llm::BackendKind::cuda, o);
      std::mt19937 rng(3);
      std::vector<std::int32_t> prompt(19);
      for (auto& p : prompt) p = static_cast<std::int32_t>(rng() % static_cast<unsigned>(w->config().n_vocab));
      std::vector<float> want(static_cast<std::size_t>(w->config().n_vocab)), got(want.size());
      cpu->prefill(cpu->alloc_sequence(), prompt, want);
      gpu->prefill(gpu->alloc_sequence(), prompt, got);
      CHECK(test::rel_l2(got, want) < 0.05);
    }
  }
}

// The CUDA backend against the reference backend (llm/reference_backend.h, the oracle) on generated
// models.
//
// Tolerance: the reference keeps F32 activations and sums in double; the GPU keeps F32 activations
// in decode (mat-vec NMSE <= 1e-9 per op in test_ops, about 3e-5 relative L2) and rounds the
// prefill GEMM inputs to F16 (rmsnorm_to_f16 and swiglu_rows_f16 NMSE <= 1e-6, about 1e-3 relative
// L2 per op). Compounded over the layers of these models, logits agree to well under 1% (relative
// L2 of the difference); the tests allow 1%, two orders of magnitude below what a wrong position,
// head or cache row produces (order 100%). Greedy tokens equal the reference's except where its top
// two logits are that close; such a near-tie ends the comparison with a message instead of a failure.
#include <doctest/doctest.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "backend_fixture.h"
#include "kernels/device.h"
#include "llm/backend.h"
#include "llm/cuda_loader.h"
#include "llm/reference_backend.h"
#include "llm/sampling.h"
#include "llm/weights.h"
#include "model/gguf.h"
#include "model/test_model.h"
#if PODWORKER_HAVE_CUDA
#include "llm/cuda/cuda_backend.h"
#include "llm/cuda/cuda_tuning.h"
#include "llm/cuda/module.h"
#endif

namespace {

using namespace podworker;
using test::have_gpu;
using test::make_weights;
using test::options;
using test::rel_l2;
using llm::Backend;
using llm::DecodeStep;
using llm::SampleSpec;
using llm::SeqId;

constexpr double kLogitTolerance = 0.01;  // relative L2, see the file comment
constexpr double kNearTie = 0.02;         // fraction of the logit range

// head_dim 32 (the attention kernels need a multiple of 32) and 3 query heads per KV head, as SmolLM2.
model::TestModelSpec small_spec() {
  model::TestModelSpec s;
  s.hidden = 192;
  s.layers = 3;
  s.heads = 6;
  s.kv_heads = 2;
  s.ffn = 512;
  s.context = 256;
  s.seed = 7;
  return s;
}

// [[maybe_unused]]: without CUDA the gpu cases that use these helpers are compiled out.
[[maybe_unused]] model::TestModelSpec untied_q4_0_spec() {
  model::TestModelSpec s = small_spec();
  s.weight_type = kernels::GgmlType::q4_0;
  s.tied_output = false;
  s.seed = 11;
  return s;
}

#define SKIP_WITHOUT_GPU()                          \
  do {                                              \
    if (!have_gpu()) {                              \
      MESSAGE("no CUDA device: skipped");           \
      return;                                       \
    }                                               \
  } while (false)

bool all_finite(std::span<const float> v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

[[maybe_unused]] std::vector<std::int32_t> prompt_tokens(int n, int vocab, int salt) {
  std::vector<std::int32_t> t(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<std::size_t>(i)] = (i * 131 + salt * 17 + 5) % vocab;
  return t;
}

#if PODWORKER_HAVE_CUDA
std::unique_ptr<Backend> gpu_backend(const std::shared_ptr<const llm::LlamaWeights>& w, llm::CudaTuning tuning = {},
                                     const llm::BackendOptions& o = options()) {
  return llm::make_cuda_backend_tuned(w, o, tuning);
}
#endif

[[maybe_unused]] void check_rows_close(std::span<const float> got, std::span<const float> want, std::size_t vocab,
                      const std::string& what) {
  REQUIRE(got.size() == want.size());
  for (std::size_t r = 0; r * vocab < got.size(); ++r) {
    const auto g = got.subspan(r * vocab, vocab);
    const auto w = want.subspan(r * vocab, vocab);
    CHECK(all_finite(g));
    const double err = rel_l2(g, w);
    INFO(what << ", row " << r << ": relative L2 error " << err);
    CHECK(err <= kLogitTolerance);
  }
}

}  // namespace

TEST_CASE("make_backend(cuda) without a device throws BackendUnavailable") {
  const auto w = make_weights(small_spec());
  if (have_gpu()) {
    MESSAGE("a CUDA device is present: checking that the CUDA backend is chosen instead");
    if (llm::cuda_backend_compiled()) CHECK(llm::make_backend(w, llm::BackendKind::cuda, options())->name() == "cuda");
    return;
  }
  CHECK(llm::cuda_device_count() == 0);
  CHECK_THROWS_AS(llm::make_backend(w, llm::BackendKind::cuda, options()), llm::BackendUnavailable);
#if PODWORKER_HAVE_CUDA
  CHECK_THROWS_AS(llm::make_cuda_backend(w, options()), llm::BackendUnavailable);
#endif
  CHECK(llm::make_backend(w, llm::BackendKind::automatic, options())->name() == "cpu");
}

// Sets an environment variable for one scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
  ~ScopedEnv() { ::unsetenv(name_); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
};

// Before any case that opens the real module: the loader keeps a module once it has opened one.
TEST_CASE("a CUDA module that is not there is BackendUnavailable, naming where it looked") {
  const auto w = make_weights(small_spec());
  const char* missing = "/nonexistent/podworker/libpodworker_cuda.so";
  const ScopedEnv env("PODWORKER_CUDA_MODULE", missing);
  CHECK(llm::cuda_module_candidates() == std::vector<std::filesystem::path>{missing});
  std::string what;
  try {
    llm::make_cuda_backend_from_module(w, options());
  } catch (const llm::BackendUnavailable& e) {
    what = e.what();
  }
  INFO(what);
  CHECK(what.find(llm::cuda_backend_compiled() ? missing : "this build has no CUDA backend") != std::string::npos);
}

TEST_CASE("the CUDA module is looked for beside the executable, then in the install's module directory") {
  const auto candidates = llm::cuda_module_candidates();
  REQUIRE(candidates.size() >= 1);
  const auto exe_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path();
  CHECK(candidates[0] == exe_dir / "libpodworker_cuda.so");
  if (llm::cuda_backend_compiled()) {
    REQUIRE(candidates.size() == 3);
    CHECK(candidates[1].filename() == "libpodworker_cuda.so");
    CHECK(candidates[1].parent_path().filename() == "podworker");
    CHECK(std::filesystem::is_regular_file(candidates[2]));  // this build's own module
  }
}

#if PODWORKER_HAVE_CUDA
TEST_CASE("the CUDA module opens, runs its factory, and its errors arrive as BackendUnavailable") {
  const auto w = make_weights(small_spec());
  if (have_gpu()) {
    CHECK(llm::make_cuda_backend_from_module(w, options())->name() == "cuda");
    return;
  }
  // No device: the module loads (with cudart and cuBLAS), accepts this build's stamp and layout, and
  // its own device check throws; the exception's type crosses the library boundary.
  std::string what;
  try {
    llm::make_cuda_backend_from_module(w, options());
  } catch (const llm::BackendUnavailable& e) {
    what = e.what();
  }
  CHECK(what == "CUDA backend requested but no CUDA device is present");
}

TEST_CASE("the CUDA module refuses a request from another build") {
  const auto path = llm::cuda_module_candidates().back();
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  REQUIRE_MESSAGE(handle != nullptr, ::dlerror());
  auto factory = reinterpret_cast<llm::CudaModuleFactory>(::dlsym(handle, llm::kCudaModuleFactory));
  const bool exported = factory != nullptr;
  REQUIRE(exported);
  // Nothing but the factory is exported: the module's copies of our libraries stay its own.
  CHECK(::dlsym(handle, "_ZN9podworker3llm17make_cuda_backendESt10shared_ptrIKNS0_12LlamaWeightsEERKNS0_14BackendOptionsE") ==
        nullptr);
  const auto w = make_weights(small_spec());
  const llm::BackendOptions o = options();
  llm::CudaModuleRequest request;
  request.weights = &w;
  request.options = &o;
  request.build_stamp = "0.0.0 another compiler";
  CHECK_THROWS_AS(factory(&request), llm::BackendUnavailable);
  request.abi = llm::kCudaModuleAbi + 1;
  CHECK_THROWS_AS(factory(&request), llm::BackendUnavailable);
  // The module stays open, as the loader keeps it: a backend's code lives there.
}
#endif

#if PODWORKER_HAVE_CUDA
TEST_CASE("CUDA tuning knobs come from the environment") {
  ::setenv("PODWORKER_CUDA_GRAPHS", "0", 1);
  ::setenv("PODWORKER_CUDA_DECODE_GEMM_FROM", "16", 1);
  const llm::CudaTuning t = llm::CudaTuning::from_environment();
  CHECK_FALSE(t.graphs);
  CHECK(t.decode_gemm_from == 16);
  ::setenv("PODWORKER_CUDA_DECODE_GEMM_FROM", "not a number", 1);
  CHECK(llm::CudaTuning::from_environment().decode_gemm_from == llm::CudaTuning{}.decode_gemm_from);
  ::unsetenv("PODWORKER_CUDA_GRAPHS");
  ::unsetenv("PODWORKER_CUDA_DECODE_GEMM_FROM");
  CHECK(llm::CudaTuning::from_environment().graphs);
}

TEST_SUITE("gpu") {
  TEST_CASE("prefill last-token logits match the reference backend") {
    SKIP_WITHOUT_GPU();
    for (const auto& spec : {small_spec(), untied_q4_0_spec()}) {
      const auto w = make_weights(spec);
      const int vocab = w->config().n_vocab;
      const auto prompt = prompt_tokens(23, vocab, 1);
      auto ref = llm::make_reference_backend(w, options());
      llm::CudaTuning small_chunks;
      small_chunks.prefill_chunk = 8;  // 23 tokens in three passes
      for (const llm::CudaTuning& tuning : {llm::CudaTuning{}, small_chunks}) {
        auto gpu = gpu_backend(w, tuning);
        std::vector<float> want(static_cast<std::size_t>(vocab)), got(want.size());
        const SeqId c = ref->alloc_sequence();
        const SeqId g = gpu->alloc_sequence();
        ref->prefill(c, prompt, want);
        gpu->prefill(g, prompt, got);
        CHECK(gpu->sequence_length(g) == 23);
        check_rows_close(got, want, want.size(), "one prefill of 23 tokens");

        // The same prompt in two calls continues at the right positions.
        const SeqId g2 = gpu->alloc_sequence();
        gpu->prefill(g2, std::span(prompt).first(13), {});
        gpu->prefill(g2, std::span(prompt).subspan(13), got);
        check_rows_close(got, want, want.size(), "prefill of 13 + 10 tokens");
        ref->free_sequence(c);
      }
    }
  }

  TEST_CASE("decode steps match the reference backend") {
    SKIP_WITHOUT_GPU();
    for (const auto& spec : {small_spec(), untied_q4_0_spec()}) {
      const auto w = make_weights(spec);
      const int vocab = w->config().n_vocab;
      auto ref = llm::make_reference_backend(w, options());
      auto gpu = gpu_backend(w);
      const SeqId c = ref->alloc_sequence(), g = gpu->alloc_sequence();
      const auto prompt = prompt_tokens(10, vocab, 2);
      ref->prefill(c, prompt, {});
      gpu->prefill(g, prompt, {});
      std::vector<float> want(static_cast<std::size_t>(vocab)), got(want.size());
      for (int step = 0; step < 6; ++step) {
        const std::int32_t token = (step * 37 + 3) % vocab;
        const DecodeStep cs{c, token}, gs{g, token};
        ref->decode(std::span(&cs, 1), want);
        gpu->decode(std::span(&gs, 1), got);
        check_rows_close(got, want, want.size(), "decode step " + std::to_string(step));
      }
      CHECK(gpu->sequence_length(g) == 16);
    }
  }

  TEST_CASE("batched decode with sequences at different positions matches the reference backend") {
    SKIP_WITHOUT_GPU();
    const auto w = make_weights(small_spec());
    const std::size_t vocab = static_cast<std::size_t>(w->config().n_vocab);
    auto ref = llm::make_reference_backend(w, options());
    auto gpu = gpu_backend(w);
    const std::vector<int> lengths = {3, 8, 13, 21, 1};
    std::vector<SeqId> cs, gs;
    for (std::size_t i = 0; i < lengths.size(); ++i) {
      cs.push_back(ref->alloc_sequence());
      gs.push_back(gpu->alloc_sequence());
      const auto prompt = prompt_tokens(lengths[i], static_cast<int>(vocab), static_cast<int>(i) + 3);
      ref->prefill(cs.back(), prompt, {});
      gpu->prefill(gs.back(), prompt, {});
    }
    // Batches change between steps (continuous batching): all five (padded to 8), two in reverse
    // order, three, then all five again.
    const std::vector<std::vector<int>> batches = {{0, 1, 2, 3, 4}, {3, 0}, {1, 4, 2}, {4, 3, 2, 1, 0}, {2}};
    int step = 0;
    for (const auto& batch : batches) {
      std::vector<DecodeStep> csteps, gsteps;
      for (int i : batch) {
        const std::int32_t token = static_cast<std::int32_t>((i * 53 + step * 7 + 1) % static_cast<int>(vocab));
        csteps.push_back({cs[static_cast<std::size_t>(i)], token});
        gsteps.push_back({gs[static_cast<std::size_t>(i)], token});
      }
      std::vector<float> want(batch.size() * vocab), got(want.size());
      ref->decode(csteps, want);
      gpu->decode(gsteps, got);
      check_rows_close(got, want, vocab, "batched step " + std::to_string(step));
      ++step;
    }
    for (std::size_t i = 0; i < lengths.size(); ++i) CHECK(gpu->sequence_length(gs[i]) == ref->sequence_length(cs[i]));
  }

  TEST_CASE("more sequences than one graph batch are decoded in several launches") {
    SKIP_WITHOUT_GPU();
    const auto w = make_weights(small_spec());
    const std::size_t vocab = static_cast<std::size_t>(w->config().n_vocab);
    const int n = 70;  // a batch of 64 and a batch of 6 (padded to 8)
    auto ref = llm::make_reference_backend(w, options(n, 32));
    auto gpu = gpu_backend(w, {}, options(n, 32));
    std::vector<DecodeStep> csteps, gsteps;
    for (int i = 0; i < n; ++i) {
      const SeqId c = ref->alloc_sequence(), g = gpu->alloc_sequence();
      REQUIRE(g >= 0);
      const auto prompt = prompt_tokens(1 + i % 5, static_cast<int>(vocab), i);
      ref->prefill(c, prompt, {});
      gpu->prefill(g, prompt, {});
      const std::int32_t token = static_cast<std::int32_t>((i * 29 + 2) % static_cast<int>(vocab));
      csteps.push_back({c, token});
      gsteps.push_back({g, token});
    }
    CHECK(gpu->alloc_sequence() == -1);
    std::vector<float> want(static_cast<std::size_t>(n) * vocab), got(want.size());
    for (int step = 0; step < 2; ++step) {
      ref->decode(csteps, want);
      gpu->decode(gsteps, got);
      check_rows_close(got, want, vocab, "70 sequences, step " + std::to_string(step));
    }
  }

  TEST_CASE("graph replay gives the same logits as eager launches") {
    SKIP_WITHOUT_GPU();
    const auto w = make_weights(small_spec());
    const std::size_t vocab = static_cast<std::size_t>(w->config().n_vocab);
    llm::CudaTuning eager;
    eager.graphs = false;
    auto with_graphs = gpu_backend(w);
    auto without = gpu_backend(w, eager);
    std::vector<SeqId> a, b;
    for (int i = 0; i < 3; ++i) {
      a.push_back(with_graphs->alloc_sequence());
      b.push_back(without->alloc_sequence());
      const auto prompt = prompt_tokens(4 + 5 * i, static_cast<int>(vocab), i);
      with_graphs->prefill(a.back(), prompt, {});
      without->prefill(b.back(), prompt, {});
    }
    // The first step of a bucket runs eagerly and captures; the later ones replay the graph.
    for (int step = 0; step < 5; ++step) {
      std::vector<DecodeStep> sa, sb;
      for (int i = 0; i < 3; ++i) {
        const std::int32_t token = static_cast<std::int32_t>((step * 11 + i * 3) % static_cast<int>(vocab));
        sa.push_back({a[static_cast<std::size_t>(i)], token});
        sb.push_back({b[static_cast<std::size_t>(i)], token});
      }
      std::vector<float> la(3 * vocab), lb(la.size());
      with_graphs->decode(sa, la);
      without->decode(sb, lb);
      INFO("step " << step);
      CHECK(rel_l2(la, lb) <= 1e-6);  // the same kernels on the same data: identical in practice
    }
  }

  TEST_CASE("long contexts: two prefill passes, then decode with both attention kernels") {
    SKIP_WITHOUT_GPU();
    model::TestModelSpec spec = small_spec();
    spec.context = 1024;
    const auto w = make_weights(spec);
    const std::size_t vocab = static_cast<std::size_t>(w->config().n_vocab);
    const auto prompt = prompt_tokens(520, static_cast<int>(vocab), 31);  // > one 512-token prefill pass
    auto ref = llm::make_reference_backend(w, options(2, 700));
    llm::CudaTuning reference_attention;
    reference_attention.fast_attention = false;
    auto fast = gpu_backend(w, {}, options(2, 700));
    auto plain = gpu_backend(w, reference_attention, options(2, 700));
    const SeqId c = ref->alloc_sequence(), f = fast->alloc_sequence(), p = plain->alloc_sequence();
    std::vector<float> want(vocab), got(vocab), other(vocab);
    ref->prefill(c, prompt, want);
    fast->prefill(f, prompt, got);
    plain->prefill(p, prompt, {});
    check_rows_close(got, want, vocab, "prefill of 520 tokens");
    for (int step = 0; step < 3; ++step) {
      const std::int32_t token = static_cast<std::int32_t>((step * 19 + 4) % static_cast<int>(vocab));
      const DecodeStep cs{c, token}, fs{f, token}, ps{p, token};
      ref->decode(std::span(&cs, 1), want);
      fast->decode(std::span(&fs, 1), got);
      plain->decode(std::span(&ps, 1), other);
      check_rows_close(got, want, vocab, "decode at position " + std::to_string(520 + step));
      INFO("backend attention against kernels::cuda::attention_decode, step " << step);
      CHECK(rel_l2(got, other) <= 1e-4);  // same math, different summation order
    }
  }

  TEST_CASE("greedy generation matches the reference backend token for token") {
    SKIP_WITHOUT_GPU();
    const auto w = make_weights(small_spec());
    const int vocab = w->config().n_vocab;
    auto ref = llm::make_reference_backend(w, options());
    auto gpu = gpu_backend(w);
    const SeqId c = ref->alloc_sequence(), g = gpu->alloc_sequence();
    const auto prompt = prompt_tokens(9, vocab, 4);
    std::vector<float> logits(static_cast<std::size_t>(vocab));
    ref->prefill(c, prompt, logits);
    std::int32_t want = llm::argmax(logits);
    std::int32_t got = gpu->prefill_sample(g, prompt, SampleSpec{});
    for (int step = 0; step < 16; ++step) {
      if (got != want) {
        const float top = logits[static_cast<std::size_t>(want)];
        const float mine = logits[static_cast<std::size_t>(got)];
        const auto [lo, hi] = std::minmax_element(logits.begin(), logits.end());
        INFO("step " << step << ": CPU " << want << " (" << top << "), GPU " << got << " (" << mine << ")");
        REQUIRE(top - mine <= kNearTie * (*hi - *lo));
        MESSAGE("near-tie at step " << step << ": the backends may part here; comparison stops");
        return;
      }
      const DecodeStep cs{c, want}, gs{g, got};
      ref->decode(std::span(&cs, 1), logits);
      want = llm::argmax(logits);
      const SampleSpec spec{};
      std::int32_t next = -1;
      gpu->decode_sample(std::span(&gs, 1), std::span(&spec, 1), std::span(&next, 1));
      got = next;
    }
  }

  TEST_CASE("device greedy sampling returns the host argmax of the device logits") {
    SKIP_WITHOUT_GPU();
    const auto w = make_weights(small_spec());
    const std::size_t vocab = static_cast<std::size_t>(w->config().n_vocab);
    auto with_logits = gpu_backend(w);
    auto sampling = gpu_backend(w);
    std::vector<SeqId> a, b;
    std::vector<std::int32_t> last;
    for (int i = 0; i < 3; ++i) {
      a.push_back(with_logits->alloc_sequence());
      b.push_back(sampling->alloc_sequence());
      const auto prompt = prompt_tokens(5 + 3 * i, static_cast<int>(vocab), 9 + i);
      std::vector<float> logits(vocab);
      with_logits->prefill(a.back(), prompt, logits);
      const std::int32_t id = sampling->prefill_sample(b.back(), prompt, SampleSpec{});
      CHECK(id == llm::argmax(logits));
      last.push_back(id);
    }
    for (int step = 0; step < 4; ++step) {
      std::vector<DecodeStep> sa, sb;
      for (int i = 0; i < 3; ++i) {
        sa.push_back({a[static_cast<std::size_t>(i)], last[static_cast<std::size_t>(i)]});
        sb.push_back({b[static_cast<std::size_t>(i)], last[static_cast<std::size_t>(i)]});
      }
      std::vector<float> logits(3 * vocab);
      with_logits->decode(sa, logits);
      const std::vector<SampleSpec> specs(3);
      std::vector<std::int32_t> ids(3);
      sampling->decode_sample(sb, specs, ids);
      for (std::size_t i = 0; i < 3; ++i) {
        CHECK(ids[i] == llm::argmax(std::span<const float>(logits).subspan(i * vocab, vocab)));
      }
      last = ids;
    }
  }

  // One sampling definition (kernels/sampling.h): from the same logits and seed the device sampler
  // picks the host sampler's token. Two backends fed the same tokens run the same kernels at the same
  // shapes, so one's logits are the other's bit for bit.
  TEST_CASE("device sampling draws the host sampler's token from the same logits") {
    SKIP_WITHOUT_GPU();
    const auto w = make_weights(small_spec());
    const std::size_t vocab = static_cast<std::size_t>(w->config().n_vocab);
    auto with_logits = gpu_backend(w);
    auto sampling = gpu_backend(w);
    const llm::SamplingParams params[3] = {{0.8f, 0, 1.0f, 11}, {1.0f, 40, 0.9f, 12}, {1.5f, 0, 0.95f, 13}};
    std::vector<SeqId> a, b;
    std::vector<std::int32_t> last;
    for (std::size_t i = 0; i < 3; ++i) {
      a.push_back(with_logits->alloc_sequence());
      b.push_back(sampling->alloc_sequence());
      const auto prompt = prompt_tokens(6 + 2 * static_cast<int>(i), static_cast<int>(vocab), 30 + static_cast<int>(i));
      std::vector<float> logits(vocab);
      with_logits->prefill(a.back(), prompt, logits);
      const SampleSpec spec{params[i], 0};
      const std::int32_t id = sampling->prefill_sample(b.back(), prompt, spec);
      CHECK(id == llm::sample_token(logits, spec));
      last.push_back(id);
    }
    for (std::uint64_t step = 1; step <= 6; ++step) {
      std::vector<DecodeStep> sa, sb;
      std::vector<SampleSpec> specs;
      for (std::size_t i = 0; i < 3; ++i) {
        sa.push_back({a[i], last[i]});
        sb.push_back({b[i], last[i]});
        specs.push_back({params[i], step});
      }
      std::vector<float> logits(3 * vocab);
      with_logits->decode(sa, logits);
      std::vector<std::int32_t> ids(3);
      sampling->decode_sample(sb, specs, ids);
      for (std::size_t i = 0; i < 3; ++i) {
        INFO("sequence " << i << " step " << step);
        CHECK(ids[i] == llm::sample_token(std::span<const float>(logits).subspan(i * vocab, vocab), specs[i]));
        last[i] = ids[i];
      }
    }
  }

  TEST_CASE("device sampling: top_k 1 picks the argmax and a seed repeats its draws") {
    SKIP_WITHOUT_GPU();
    const auto w = make_weights(small_spec());
    const int vocab = w->config().n_vocab;
    const auto prompt = prompt_tokens(7, vocab, 21);
    SampleSpec top1;
    top1.params.temperature = 0.8f;
    top1.params.top_k = 1;
    top1.params.seed = 5;
    SampleSpec nucleus;
    nucleus.params.temperature = 1.0f;
    nucleus.params.top_p = 0.9f;
    nucleus.params.seed = 42;

    auto greedy = gpu_backend(w);
    auto x = gpu_backend(w);
    auto y = gpu_backend(w);
    const SeqId s0 = greedy->alloc_sequence();
    const std::int32_t g0 = greedy->prefill_sample(s0, prompt, SampleSpec{});
    CHECK(x->prefill_sample(x->alloc_sequence(), prompt, top1) == g0);
    y->alloc_sequence();
    const SeqId sx = x->alloc_sequence(), sy = y->alloc_sequence();
    const std::int32_t dx = x->prefill_sample(sx, prompt, nucleus);
    const std::int32_t dy = y->prefill_sample(sy, prompt, nucleus);
    CHECK(dx == dy);
    CHECK(dx >= 0);
    CHECK(dx < vocab);
    for (int step = 0; step < 4; ++step) {
      nucleus.step = static_cast<std::uint64_t>(step + 1);
      std::int32_t ox = -1, oy = -1;
      const DecodeStep stx{sx, dx}, sty{sy, dy};
      x->decode_sample(std::span(&stx, 1), std::span(&nucleus, 1), std::span(&ox, 1));
      y->decode_sample(std::span(&sty, 1), std::span(&nucleus, 1), std::span(&oy, 1));
      CHECK(ox == oy);
      CHECK(ox >= 0);
      CHECK(ox < vocab);
    }
  }

  TEST_CASE("bad requests throw and leave the backend usable") {
    SKIP_WITHOUT_GPU();
    const auto w = make_weights(small_spec());
    const int vocab = w->config().n_vocab;
    auto gpu = gpu_backend(w, {}, options(2, 16));
    const SeqId a = gpu->alloc_sequence(), b = gpu->alloc_sequence();
    CHECK(gpu->alloc_sequence() == -1);
    std::vector<float> logits(static_cast<std::size_t>(vocab));
    const std::vector<std::int32_t> ok = {1, 2, 3};
    CHECK_THROWS_AS(gpu->prefill(7, ok, logits), std::invalid_argument);
    CHECK_THROWS_AS(gpu->prefill(a, std::vector<std::int32_t>{1, vocab}, logits), std::invalid_argument);
    CHECK_THROWS_AS(gpu->prefill(a, std::vector<std::int32_t>(17, 1), logits), std::invalid_argument);
    CHECK_THROWS_AS(gpu->prefill(a, std::vector<std::int32_t>{}, logits), std::invalid_argument);
    CHECK(gpu->sequence_length(a) == 0);
    gpu->prefill(a, ok, logits);
    gpu->prefill(b, ok, {});
    const std::vector<DecodeStep> twice = {{a, 1}, {a, 2}};
    std::vector<float> two(2 * static_cast<std::size_t>(vocab));
    CHECK_THROWS_AS(gpu->decode(twice, two), std::invalid_argument);
    const std::vector<DecodeStep> bad_token = {{a, 1}, {b, -1}};
    CHECK_THROWS_AS(gpu->decode(bad_token, two), std::invalid_argument);
    CHECK(gpu->sequence_length(a) == 3);
    const std::vector<DecodeStep> fine = {{a, 1}, {b, 2}};
    gpu->decode(fine, two);
    CHECK(all_finite(two));
    CHECK(gpu->sequence_length(b) == 4);
    gpu->free_sequence(b);
    gpu->free_sequence(b);  // ignored
    CHECK(gpu->alloc_sequence() == b);
    CHECK(gpu->sequence_length(b) == 0);
    // Fill `a` to the context limit, then one more token is refused.
    gpu->prefill(a, std::vector<std::int32_t>(12, 4), {});
    CHECK(gpu->sequence_length(a) == 16);
    const DecodeStep full{a, 1};
    std::vector<float> one(static_cast<std::size_t>(vocab));
    CHECK_THROWS_AS(gpu->decode(std::span(&full, 1), one), std::invalid_argument);
  }
}
#endif

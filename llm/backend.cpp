#include "llm/backend.h"

#include <vector>

#include "kernels/device.h"
#include "llm/cpu_backend.h"
#include "llm/cuda_backend.h"
#include "llm/reference_backend.h"
#include "podworker/log.h"

namespace podworker::llm {

std::int32_t Backend::prefill_sample(SeqId seq, std::span<const std::int32_t> tokens, const SampleSpec& spec) {
  std::vector<float> logits(static_cast<std::size_t>(config().n_vocab));
  prefill(seq, tokens, logits);
  return sample_token(logits, spec);
}

void Backend::decode_sample(std::span<const DecodeStep> steps, std::span<const SampleSpec> specs,
                            std::span<std::int32_t> out) {
  if (specs.size() != steps.size() || out.size() != steps.size()) {
    throw std::invalid_argument("decode_sample: steps, specs and out differ in size");
  }
  const std::size_t vocab = static_cast<std::size_t>(config().n_vocab);
  std::vector<float> logits(steps.size() * vocab);
  decode(steps, logits);
  std::vector<std::uint64_t> scratch;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    out[i] = sample_token(std::span<const float>(logits).subspan(i * vocab, vocab), specs[i], scratch);
  }
}

std::string_view backend_kind_name(BackendKind kind) {
  switch (kind) {
    case BackendKind::cpu: return "cpu";
    case BackendKind::cuda: return "cuda";
    case BackendKind::automatic: return "auto";
    case BackendKind::reference: return "reference";
  }
  return "?";
}

BackendKind parse_backend_kind(std::string_view name) {
  if (name == "cpu") return BackendKind::cpu;
  if (name == "cuda" || name == "gpu") return BackendKind::cuda;
  if (name == "auto" || name.empty()) return BackendKind::automatic;
  if (name == "reference") return BackendKind::reference;
  throw std::invalid_argument("unknown backend \"" + std::string(name) + "\" (expected cpu, cuda, auto or reference)");
}

int cuda_device_count() { return kernels::cuda::device_count(); }

#ifndef PODWORKER_LLM_HAVE_CUDA
std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const LlamaWeights>, const BackendOptions&) {
  throw BackendUnavailable("this build has no CUDA backend (PODWORKER_CUDA=OFF or no CUDA compiler)");
}
#endif

bool cuda_backend_compiled() {
#ifdef PODWORKER_LLM_HAVE_CUDA
  return true;
#else
  return false;
#endif
}

std::unique_ptr<Backend> make_backend(std::shared_ptr<const LlamaWeights> weights, BackendKind kind,
                                      const BackendOptions& options) {
  if (kind == BackendKind::reference) {
    log::info("llm: using the reference backend");
    return make_reference_backend(std::move(weights), options);
  }
  if (kind == BackendKind::cuda || kind == BackendKind::automatic) {
#ifdef PODWORKER_LLM_HAVE_CUDA
    const int devices = cuda_device_count();
    if (devices > 0) {
      log::info("llm: using the CUDA backend (" + std::to_string(devices) + " device(s))");
      return make_cuda_backend(std::move(weights), options);
    }
    if (kind == BackendKind::cuda) throw BackendUnavailable("CUDA backend requested but no CUDA device is present");
    log::info("llm: no CUDA device; using the CPU backend");
#else
    if (kind == BackendKind::cuda) return make_cuda_backend(std::move(weights), options);
    const int devices = cuda_device_count();
    log::info(devices > 0 ? "llm: a CUDA device is present but this build has no CUDA backend; using the CPU backend"
                          : "llm: using the CPU backend (CUDA backend not built)");
#endif
  } else {
    log::info("llm: using the CPU backend");
  }
  return make_cpu_backend(std::move(weights), options);
}

}  // namespace podworker::llm

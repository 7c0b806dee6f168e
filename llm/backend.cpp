#include "llm/backend.h"

#include <vector>

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

}  // namespace podworker::llm

#include "llm/host_backend.h"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace podworker::llm {

HostBackend::HostBackend(const LlamaConfig& config, const BackendOptions& options)
    : config_(config),
      max_context_(options.max_context > 0 ? options.max_context
                                           : std::min(config.n_ctx_train, 2048)),
      lengths_(static_cast<std::size_t>(std::max(1, options.max_sequences)), -1) {}

SeqId HostBackend::alloc_sequence() {
  for (std::size_t i = 0; i < lengths_.size(); ++i) {
    if (lengths_[i] < 0) {
      lengths_[i] = 0;
      return static_cast<SeqId>(i);
    }
  }
  return -1;
}

void HostBackend::free_sequence(SeqId seq) {
  if (seq < 0 || seq >= max_sequences() || lengths_[static_cast<std::size_t>(seq)] < 0) return;
  lengths_[static_cast<std::size_t>(seq)] = -1;
  release_sequence(seq);
}

int HostBackend::sequence_length(SeqId seq) const {
  if (seq < 0 || seq >= max_sequences() || lengths_[static_cast<std::size_t>(seq)] < 0) {
    throw std::invalid_argument("unknown sequence " + std::to_string(seq));
  }
  return lengths_[static_cast<std::size_t>(seq)];
}

void HostBackend::prefill(SeqId seq, std::span<const std::int32_t> tokens,
                          std::span<float> logits_last) {
  if (tokens.empty()) throw std::invalid_argument("prefill: no tokens");
  const int length = sequence_length(seq);
  if (length + tokens.size() > static_cast<std::size_t>(max_context_)) {
    throw std::invalid_argument("prefill: " + std::to_string(length + tokens.size()) +
                                " tokens exceed the context of " + std::to_string(max_context_));
  }
  if (!logits_last.empty() && logits_last.size() != static_cast<std::size_t>(config_.n_vocab)) {
    throw std::invalid_argument("prefill: logits buffer must hold n_vocab floats");
  }
  const std::size_t n = tokens.size();
  batch_.tokens.assign(tokens.begin(), tokens.end());
  batch_.seqs.assign(n, seq);
  batch_.pos.resize(n);
  for (std::size_t i = 0; i < n; ++i) batch_.pos[i] = length + static_cast<int>(i);
  batch_.out_rows.clear();
  if (!logits_last.empty()) batch_.out_rows.push_back(static_cast<int>(n - 1));
  batch_.logits = logits_last.data();
  run();
}

void HostBackend::decode(std::span<const DecodeStep> steps, std::span<float> logits) {
  if (steps.empty()) return;
  if (logits.size() != steps.size() * static_cast<std::size_t>(config_.n_vocab)) {
    throw std::invalid_argument("decode: logits buffer must hold steps * n_vocab floats");
  }
  const std::size_t n = steps.size();
  batch_.tokens.resize(n);
  batch_.seqs.resize(n);
  batch_.pos.resize(n);
  batch_.out_rows.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const int length = sequence_length(steps[i].seq);
    for (std::size_t j = 0; j < i; ++j) {
      if (batch_.seqs[j] == steps[i].seq)
        throw std::invalid_argument("decode: a sequence appears twice in one batch");
    }
    if (length + 1 > max_context_) {
      throw std::invalid_argument("decode: sequence " + std::to_string(steps[i].seq) +
                                  " is full (" + std::to_string(max_context_) + " tokens)");
    }
    batch_.seqs[i] = steps[i].seq;
    batch_.pos[i] = length;
    batch_.tokens[i] = steps[i].token;
    batch_.out_rows[i] = static_cast<int>(i);
  }
  batch_.logits = logits.data();
  run();
}

void HostBackend::run() {
  for (std::int32_t t : batch_.tokens) {
    if (t < 0 || t >= config_.n_vocab)
      throw std::invalid_argument("token id " + std::to_string(t) + " is outside the vocabulary");
  }
  prepare_batch();
  const int rows = static_cast<int>(batch_.tokens.size());
  llama_forward(*this, config_, rows,
                batch_.logits == nullptr ? 0 : static_cast<int>(batch_.out_rows.size()));
  for (int i = 0; i < rows; ++i) {
    lengths_[static_cast<std::size_t>(batch_.seqs[static_cast<std::size_t>(i)])] =
        batch_.pos[static_cast<std::size_t>(i)] + 1;
  }
}

}  // namespace podworker::llm

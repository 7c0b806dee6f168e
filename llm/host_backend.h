// The part of a backend that is the same for every backend whose forward pass the host drives op by
// op (the fast CPU backend, the reference backend): sequence slots, the checks of prefill() and
// decode() (a bad call changes nothing), and the current batch. A derived class implements the ops
// (llm/forward.h); run() feeds them the batch through llama_forward, the one graph.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "llm/backend.h"
#include "llm/forward.h"

namespace podworker::llm {

class HostBackend : public Backend, protected LlamaOps {
 public:
  HostBackend(const LlamaConfig& config, const BackendOptions& options);

  const LlamaConfig& config() const override { return config_; }
  int max_sequences() const override { return static_cast<int>(lengths_.size()); }
  int max_context() const override { return max_context_; }
  SeqId alloc_sequence() override;
  void free_sequence(SeqId seq) override;
  int sequence_length(SeqId seq) const override;
  void prefill(SeqId seq, std::span<const std::int32_t> tokens,
               std::span<float> logits_last) override;
  void decode(std::span<const DecodeStep> steps, std::span<float> logits) override;

 protected:
  // The batch the ops run on: row i is token tokens[i] of sequence seqs[i] at position pos[i];
  // out_rows lists the rows whose logits are wanted, written to `logits` [out_rows][n_vocab].
  struct Batch {
    std::vector<std::int32_t> tokens;
    std::vector<SeqId> seqs;
    std::vector<int> pos;
    std::vector<int> out_rows;
    float* logits = nullptr;
  };
  const Batch& batch() const { return batch_; }

  // Called before the graph runs on a batch (grow per-sequence storage for its positions).
  virtual void prepare_batch() {}
  // Called when a sequence's slot is returned.
  virtual void release_sequence(SeqId) {}

  LlamaConfig config_;

 private:
  void run();

  int max_context_ = 0;
  std::vector<int> lengths_;  // -1: free slot
  Batch batch_;
};

}  // namespace podworker::llm

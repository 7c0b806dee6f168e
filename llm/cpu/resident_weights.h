// The CPU backend's own copy of the weight matrices, in anonymous memory backed by 2 MiB pages.
//
// A decoded token reads every matrix once, ~100 MB for SmolLM2-135M. From the file mapping that
// stream runs over 4 KiB page-cache pages: one TLB miss and page walk per 4 KiB (the second-level
// TLB covers a few MiB), and the hardware prefetchers stop at every page boundary. On the
// benchmark machine a prefetched read of the model file ran at ~11-12.5 GB/s from the mapping and
// ~15 GB/s from a huge-page copy (best of 30 passes each). The copy holds the same bytes in the
// same layout, so every product is bit for bit unchanged; norms and the embedding table (a few
// rows per token) stay in the mapping. The page cache's copy of the file remains reclaimable.
#pragma once

#include <cstddef>
#include <vector>

#include "llm/weights.h"

namespace podworker::llm::cpu {

class ResidentWeights {
 public:
  // Copies the layers' matrices and the LM head of `w`, which must outlive this object (the
  // norms' views still point into its mapping). When no anonymous mapping can be had, the views
  // are those of `w` unchanged (copied() says which).
  explicit ResidentWeights(const LlamaWeights& w);
  ~ResidentWeights();
  ResidentWeights(const ResidentWeights&) = delete;
  ResidentWeights& operator=(const ResidentWeights&) = delete;

  const std::vector<LayerWeights>& layers() const { return layers_; }
  const TensorView& output() const { return output_; }
  bool copied() const { return base_ != nullptr; }
  std::size_t bytes() const { return size_; }

 private:
  std::vector<LayerWeights> layers_;
  TensorView output_;
  std::byte* raw_ = nullptr;   // the mapping as mmap returned it
  std::byte* base_ = nullptr;  // its first 2 MiB boundary, where the copy starts
  std::size_t size_ = 0;
};

}  // namespace podworker::llm::cpu

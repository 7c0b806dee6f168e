#include "llm/cpu/resident_weights.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstring>

namespace podworker::llm::cpu {

namespace {

constexpr std::size_t kHugePage = std::size_t{2} << 20;
// Each matrix starts on a cache line, so no row pair of one matrix shares a line with another.
constexpr std::size_t kAlign = 64;

std::size_t round_up(std::size_t n, std::size_t to) {
  return (n + to - 1) / to * to;
}

template <class F>
void for_each_matrix(std::vector<LayerWeights>& layers, TensorView& output, F&& f) {
  for (LayerWeights& l : layers) {
    for (TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) f(*t);
  }
  f(output);
}

}  // namespace

ResidentWeights::ResidentWeights(const LlamaWeights& w) : layers_(w.layers()), output_(w.output()) {
  std::size_t total = 0;
  for_each_matrix(layers_, output_,
                  [&](const TensorView& t) { total += round_up(t.bytes, kAlign); });
  if (total == 0) return;
  size_ = round_up(total, kHugePage);
  // One huge page of slack: mmap only promises 4 KiB alignment, and a 2 MiB page needs 2 MiB.
  void* raw = ::mmap(nullptr, size_ + kHugePage, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    size_ = 0;
    return;
  }
  raw_ = static_cast<std::byte*>(raw);
  base_ = raw_ + (kHugePage - reinterpret_cast<std::uintptr_t>(raw) % kHugePage) % kHugePage;
  // Before the first touch, so the copy's page faults take 2 MiB pages. Where transparent huge
  // pages are off this fails and the copy is merely 4 KiB pages like the mapping: still correct.
  ::madvise(base_, size_, MADV_HUGEPAGE);
  std::size_t at = 0;
  for_each_matrix(layers_, output_, [&](TensorView& t) {
    std::memcpy(base_ + at, t.data, t.bytes);
    t.data = base_ + at;
    at += round_up(t.bytes, kAlign);
  });
  ::mprotect(base_, size_, PROT_READ);  // the weights are constants: a stray write faults
}

ResidentWeights::~ResidentWeights() {
  if (raw_ != nullptr) ::munmap(raw_, size_ + kHugePage);
}

}  // namespace podworker::llm::cpu

// The CPU backend's huge-page copy of the weight matrices (llm/cpu/resident_weights.h): the same
// bytes and shapes as the file's views, in memory of its own, each matrix on a cache line.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "llm/cpu/resident_weights.h"
#include "test_model_fixture.h"

using namespace podworker;

namespace {

void check_copy(const llm::TensorView& file, const llm::TensorView& copy, const std::byte* lo,
                const std::byte* hi) {
  CAPTURE(file.name);
  CHECK(copy.name == file.name);
  CHECK(copy.type == file.type);
  CHECK(copy.rows == file.rows);
  CHECK(copy.cols == file.cols);
  REQUIRE(copy.bytes == file.bytes);
  CHECK(copy.data != file.data);  // its own memory, not the file mapping
  CHECK(reinterpret_cast<std::uintptr_t>(copy.data) % 64 == 0);
  CHECK(copy.data >= lo);
  CHECK(copy.data + copy.bytes <= hi);
  CHECK(std::memcmp(copy.data, file.data, file.bytes) == 0);
}

void check_resident(const llm::LlamaWeights& w) {
  const llm::cpu::ResidentWeights r(w);
  REQUIRE(r.copied());
  REQUIRE(r.layers().size() == w.layers().size());
  // The copy's range: the matrices' extent, within the one mapping.
  const std::byte* lo = r.output().data;
  const std::byte* hi = r.output().data + r.output().bytes;
  for (const auto& l : r.layers()) {
    for (const llm::TensorView* t : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down}) {
      lo = std::min(lo, t->data);
      hi = std::max(hi, t->data + t->bytes);
    }
  }
  CHECK(hi - lo <= static_cast<std::ptrdiff_t>(r.bytes()));
  for (std::size_t i = 0; i < w.layers().size(); ++i) {
    const llm::LayerWeights& f = w.layers()[i];
    const llm::LayerWeights& c = r.layers()[i];
    check_copy(f.wq, c.wq, lo, hi);
    check_copy(f.wk, c.wk, lo, hi);
    check_copy(f.wv, c.wv, lo, hi);
    check_copy(f.wo, c.wo, lo, hi);
    check_copy(f.w_gate, c.w_gate, lo, hi);
    check_copy(f.w_up, c.w_up, lo, hi);
    check_copy(f.w_down, c.w_down, lo, hi);
    // Norms are read in place.
    CHECK(c.attn_norm.data == f.attn_norm.data);
    CHECK(c.ffn_norm.data == f.ffn_norm.data);
  }
  check_copy(w.output(), r.output(), lo, hi);
}

}  // namespace

TEST_CASE(
    "resident weights: a byte-identical, cache-line aligned copy of every matrix, tied output") {
  check_resident(
      *testing::load_weights(testing::generated_model_path(testing::small_spec(), "q4_1")));
}

TEST_CASE("resident weights: an untied output is copied too") {
  auto spec = testing::small_spec();
  spec.weight_type = kernels::GgmlType::q8_0;
  spec.tied_output = false;
  check_resident(*testing::load_weights(testing::generated_model_path(spec, "q8_0_untied")));
}

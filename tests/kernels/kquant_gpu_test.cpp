// The CUDA decoders of the K-quant and Q5_0 blocks (kernels/cuda/kquant.cuh) against the CPU
// reference: the same float for every element, since both round as ggml does. Suite "gpu": without
// a device every case returns early with a message.
#include <doctest/doctest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/dequantize.h"
#include "kernels/device.h"
#include "kernels/get_rows.h"

namespace k = podworker::kernels;
namespace kc = podworker::kernels::cuda;

namespace {

// Random blocks of `type` whose f16 scale fields (at `scale_offsets`) are sane values.
std::vector<std::byte> random_blocks(k::GgmlType type, int nblocks, std::initializer_list<std::size_t> scale_offsets,
                                     std::uint32_t seed) {
  std::mt19937 rng(seed);
  const std::size_t bb = k::block_bytes(type);
  std::vector<std::byte> out(bb * static_cast<std::size_t>(nblocks));
  for (auto& b : out) b = static_cast<std::byte>(rng());
  std::normal_distribution<float> normal(0.0f, 0.02f);
  for (int i = 0; i < nblocks; ++i) {
    for (std::size_t off : scale_offsets) {
      const k::half_bits h = k::fp32_to_fp16(normal(rng));
      std::memcpy(out.data() + bb * static_cast<std::size_t>(i) + off, &h, sizeof h);
    }
  }
  return out;
}

}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("kquant dequantize and get_rows match the CPU reference bit for bit") {
    if (kc::device_count() == 0) {
      MESSAGE("no CUDA device (or CUDA not built): skipped");
      return;
    }
    struct Case {
      k::GgmlType type;
      std::initializer_list<std::size_t> scales;
    };
    for (const Case& c : {Case{k::GgmlType::q5_0, {0}}, Case{k::GgmlType::q4_k, {0, 2}},
                          Case{k::GgmlType::q5_k, {0, 2}}, Case{k::GgmlType::q6_k, {208}}}) {
      CAPTURE(k::type_name(c.type));
      constexpr int kRows = 8, kCols = 512;
      const int nblocks = kRows * kCols / static_cast<int>(k::block_elements(c.type));
      const std::vector<std::byte> blocks = random_blocks(c.type, nblocks, c.scales, 17);
      std::vector<float> want(static_cast<std::size_t>(kRows) * kCols);
      k::cpu::dequantize(c.type, blocks.data(), want.data(), static_cast<std::int64_t>(want.size()));

      kc::DeviceBuffer<std::byte> d_blocks(blocks.size());
      d_blocks.upload(blocks, kc::StreamView{});
      kc::DeviceBuffer<float> d_out(want.size());
      kc::dequantize(c.type, d_blocks.get(), d_out.get(), static_cast<std::int64_t>(want.size()), {});
      std::vector<float> got(want.size());
      d_out.download(got, kc::StreamView{});
      kc::device_synchronize();
      CHECK(std::memcmp(got.data(), want.data(), got.size() * sizeof(float)) == 0);

      // Rows 5, 0 and 7 through get_rows (the embedding lookup).
      const std::vector<int> ids = {5, 0, 7};
      kc::DeviceBuffer<int> d_ids(ids.size());
      d_ids.upload(ids, kc::StreamView{});
      kc::DeviceBuffer<float> d_rows(ids.size() * kCols);
      kc::get_rows(c.type, d_blocks.get(), kRows, kCols, d_ids.get(), static_cast<std::int64_t>(ids.size()),
                   d_rows.get(), {});
      std::vector<float> rows(ids.size() * kCols);
      d_rows.download(rows, kc::StreamView{});
      kc::device_synchronize();
      for (std::size_t r = 0; r < ids.size(); ++r) {
        CAPTURE(r);
        CHECK(std::memcmp(rows.data() + r * kCols, want.data() + static_cast<std::size_t>(ids[r]) * kCols,
                          kCols * sizeof(float)) == 0);
      }
    }
  }
}

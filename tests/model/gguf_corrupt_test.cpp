// Corrupt, truncated and hostile GGUF files: each must give a GgufError that says what is wrong,
// never a crash, an out-of-bounds read or a huge allocation (run under ASan to see the latter two).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstring>

#include "model/gguf.h"
#include "test_files.h"

using namespace podworker::model;
using podworker::kernels::GgmlType;

namespace {

std::vector<std::byte> small_file() {
  GgufWriter w;
  w.set_string("general.architecture", "llama");
  w.set_u32("llama.block_count", 2);
  w.set_f32("llama.rope.freq_base", 10000.0f);
  w.set_bool("tokenizer.ggml.add_bos_token", false);
  const std::vector<std::string> tokens{"a", "b", "Ġc"};
  w.set("tokenizer.ggml.tokens", MetaValue::string_array(tokens));
  w.set("nested", MetaValue::array(MetaType::array, {MetaValue::array(MetaType::uint16, {MetaValue::u16(3)})}));
  w.add_tensor("w.q4_1", GgmlType::q4_1, {32, 2}, std::vector<std::byte>(40, std::byte{1}));
  w.add_tensor("w.f32", GgmlType::f32, {3}, std::vector<std::byte>(12, std::byte{2}));
  return w.to_bytes();
}

// A file with no metadata and one tensor "t": fields sit at known offsets.
//   0 magic, 4 version, 8 tensor count, 16 kv count, 24 name length, 32 name "t",
//   33 n_dims, 37 dims[0], 45 dims[1], 53 type, 57 offset, 65 end of infos, data at 96.
std::vector<std::byte> one_tensor_file() {
  GgufWriter w;
  w.add_tensor("t", GgmlType::f32, {4, 2}, std::vector<std::byte>(32, std::byte{7}));
  return w.to_bytes();
}

template <class T>
void poke(std::vector<std::byte>& bytes, std::size_t at, T value) {
  std::memcpy(bytes.data() + at, &value, sizeof value);
}

std::string error_of(std::vector<std::byte> bytes) {
  try {
    GgufFile::from_bytes(std::move(bytes));
  } catch (const GgufError& e) {
    return e.what();
  }
  return "no error";
}

}  // namespace

TEST_CASE("the fixed offsets used below match the writer") {
  const auto bytes = one_tensor_file();
  const GgufFile f = GgufFile::from_bytes(bytes);
  CHECK(f.data_offset() == 96);
  CHECK(bytes.size() == 128);
}

TEST_CASE("a file truncated at any offset is a GgufError") {
  const auto full = small_file();
  const GgufFile clean = GgufFile::from_bytes(full);
  std::size_t data_end = 0;  // the writer pads after the last tensor; cuts in that padding are valid
  for (const auto& t : clean.tensors()) data_end = std::max<std::size_t>(data_end, clean.data_offset() + t.offset + t.bytes);
  REQUIRE(data_end < full.size());
  for (std::size_t len = 0; len < data_end; ++len) {
    CAPTURE(len);
    std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len));
    CHECK_THROWS_AS(GgufFile::from_bytes(std::move(cut)), GgufError);
  }
  // Through the memory-mapped path as well, at a few offsets (headers, infos, data).
  for (std::size_t len : {std::size_t{0}, std::size_t{3}, std::size_t{23}, full.size() / 2, data_end - 1}) {
    podworker::model::testing::TempFile file;
    podworker::model::testing::write_bytes(file.path(),
                                           std::vector<std::byte>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len)));
    CHECK_THROWS_AS(GgufFile::open(file.path()), GgufError);
  }
}

TEST_CASE("bad magic and versions are refused by name") {
  auto bytes = one_tensor_file();
  bytes[0] = std::byte{'X'};
  CHECK(error_of(bytes).find("bad magic") != std::string::npos);

  for (std::uint32_t version : {0u, 1u, 4u, 0x03000000u}) {
    CAPTURE(version);
    auto b = one_tensor_file();
    poke(b, 4, version);
    const std::string err = error_of(b);
    CHECK(err.find("unsupported GGUF version " + std::to_string(version)) != std::string::npos);
    if (version == 0x03000000u) CHECK(err.find("big-endian") != std::string::npos);
  }
}

TEST_CASE("absurd counts and lengths are capped by the file size") {
  auto b = one_tensor_file();
  poke(b, 8, std::uint64_t{1} << 60);
  CHECK(error_of(b).find("tensor count") != std::string::npos);

  b = one_tensor_file();
  poke(b, 16, ~std::uint64_t{0});
  CHECK(error_of(b).find("metadata count") != std::string::npos);

  b = one_tensor_file();
  poke(b, 24, std::uint64_t{1} << 40);  // tensor name length
  CHECK(error_of(b).find("tensor name") != std::string::npos);

  b = one_tensor_file();
  poke(b, 33, std::uint32_t{5});
  CHECK(error_of(b).find("5 dimensions") != std::string::npos);

  b = one_tensor_file();
  poke(b, 37, ~std::uint64_t{0});
  CHECK(error_of(b).find("invalid dimension") != std::string::npos);

  b = one_tensor_file();
  poke(b, 37, std::uint64_t{1} << 40);
  poke(b, 45, std::uint64_t{1} << 40);
  CHECK(error_of(b).find("overflows") != std::string::npos);

  // An array length far beyond the file, in metadata.
  GgufWriter w;
  w.set("arr", MetaValue::array(MetaType::uint64, {MetaValue::u64(1)}));
  auto m = w.to_bytes();
  // 24 header + 8 + 3 key + 4 type + 4 element type = 43: the array length.
  poke(m, 43, std::uint64_t{1} << 59);
  CHECK(error_of(m).find("array length") != std::string::npos);
}

TEST_CASE("unsupported and corrupt tensor infos are named") {
  auto b = one_tensor_file();
  poke(b, 53, std::uint32_t{11});
  const std::string err = error_of(b);
  CHECK(err.find("tensor 't' has unsupported ggml type 11 (Q3_K)") != std::string::npos);

  b = one_tensor_file();
  poke(b, 53, std::uint32_t{999});
  CHECK(error_of(b).find("unsupported ggml type 999 (unknown)") != std::string::npos);

  b = one_tensor_file();
  poke(b, 53, static_cast<std::uint32_t>(GgmlType::q8_0));  // 4 is not a multiple of 32
  CHECK(error_of(b).find("not a multiple of the Q8_0 block size") != std::string::npos);

  b = one_tensor_file();
  poke(b, 57, std::uint64_t{8});
  CHECK(error_of(b).find("not a multiple of the alignment") != std::string::npos);

  b = one_tensor_file();
  poke(b, 57, std::uint64_t{32});
  CHECK(error_of(b).find("beyond the end of the file") != std::string::npos);

  b = one_tensor_file();
  poke(b, 57, ~std::uint64_t{31});  // aligned, and would overflow an unchecked addition
  CHECK(error_of(b).find("beyond the end of the file") != std::string::npos);

  b = one_tensor_file();
  b.resize(b.size() - 1);
  CHECK(error_of(b).find("beyond the end of the file") != std::string::npos);

  GgufWriter w;
  w.add_tensor("aa", GgmlType::f32, {1}, std::vector<std::byte>(4));
  w.add_tensor("bb", GgmlType::f32, {1}, std::vector<std::byte>(4));
  auto d = w.to_bytes();
  // The second info starts at 24 + (8 + 2 + 4 + 8 + 4 + 8) = 58; its name text at 66.
  std::memcpy(d.data() + 66, "aa", 2);
  CHECK(error_of(d).find("duplicate tensor name 'aa'") != std::string::npos);
}

TEST_CASE("corrupt metadata is named") {
  GgufWriter w;
  w.set("flag", MetaValue::boolean(true));
  auto b = w.to_bytes();
  // 24 header + 8 + 4 key + 4 type = 40: the bool byte.
  b[40] = std::byte{2};
  CHECK(error_of(b).find("bool value 2") != std::string::npos);
  b[40] = std::byte{1};
  poke(b, 36, std::uint32_t{13});
  CHECK(error_of(b).find("unknown metadata value type 13") != std::string::npos);

  GgufWriter dup;
  dup.set("aaaa", MetaValue::u8(1));
  dup.set("bbbb", MetaValue::u8(2));
  auto d = dup.to_bytes();
  std::memcpy(d.data() + 24 + 8 + 4 + 4 + 1 + 8, "aaaa", 4);
  CHECK(error_of(d).find("duplicate metadata key 'aaaa'") != std::string::npos);

  GgufWriter align;
  align.set("general.alignment", MetaValue::u32(64));
  auto a = align.to_bytes();
  // 24 + 8 + 17 key + 4 type = 53: the value.
  poke(a, 53, std::uint32_t{48});
  CHECK(error_of(a).find("not a power of two") != std::string::npos);
  poke(a, 53, std::uint32_t{0});
  CHECK(error_of(a).find("not a power of two") != std::string::npos);
  poke(a, 49, static_cast<std::uint32_t>(MetaType::int32));
  CHECK(error_of(a).find("must be uint32") != std::string::npos);

  // Arrays nested deeper than the limit.
  MetaValue v = MetaValue::array(MetaType::uint8, {});
  for (int i = 0; i < 6; ++i) v = MetaValue::array(MetaType::array, {v});
  GgufWriter deep;
  deep.set("deep", v);
  CHECK(error_of(deep.to_bytes()).find("nested too deeply") != std::string::npos);

  CHECK(error_of({}).find("truncated") != std::string::npos);
}

TEST_CASE("random byte corruption never escapes as anything but GgufError") {
  const auto full = small_file();
  std::uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return state >> 33;
  };
  const GgufFile clean = GgufFile::from_bytes(full);
  const std::size_t header = clean.data_offset();
  int errors = 0;
  for (int round = 0; round < 3000; ++round) {
    auto b = full;
    const int flips = 1 + static_cast<int>(next() % 4);
    for (int i = 0; i < flips; ++i) b[next() % header] = static_cast<std::byte>(next() & 0xFF);
    try {
      const GgufFile f = GgufFile::from_bytes(std::move(b));
      // Whatever was accepted must be internally consistent.
      for (const auto& t : f.tensors()) {
        CHECK(t.data + t.bytes <= t.data - f.data_offset() - t.offset + f.file_size());
      }
    } catch (const GgufError&) {
      ++errors;
    }
  }
  CHECK(errors > 0);
}

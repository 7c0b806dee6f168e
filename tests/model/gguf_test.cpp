// GGUF writer -> reader round trips: every metadata type, every tensor type, alignment, version 2.
#include <doctest/doctest.h>

#include <cstring>
#include <limits>

#include "model/gguf.h"
#include "test_files.h"

using namespace podworker::model;
using podworker::kernels::GgmlType;
using podworker::model::testing::TempFile;

namespace {

std::vector<std::byte> pattern(std::size_t n, unsigned seed) {
  std::vector<std::byte> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::byte>((i * 131 + seed * 17 + (i >> 7)) & 0xFF);
  return v;
}

GgufWriter every_type_writer(std::uint32_t version = 3) {
  GgufWriter w(version);
  w.set("general.architecture", MetaValue::string("llama"));
  w.set("t.u8", MetaValue::u8(250));
  w.set("t.i8", MetaValue::i8(-120));
  w.set("t.u16", MetaValue::u16(65000));
  w.set("t.i16", MetaValue::i16(-32000));
  w.set("t.u32", MetaValue::u32(4000000000u));
  w.set("t.i32", MetaValue::i32(-2000000000));
  w.set("t.u64", MetaValue::u64(std::numeric_limits<std::uint64_t>::max()));
  w.set("t.i64", MetaValue::i64(std::numeric_limits<std::int64_t>::min()));
  w.set("t.f32", MetaValue::f32(1.5e-5f));
  w.set("t.f64", MetaValue::f64(-2.718281828459045));
  w.set("t.bool_true", MetaValue::boolean(true));
  w.set("t.bool_false", MetaValue::boolean(false));
  w.set("t.string", MetaValue::string("héllo 日本 \n"));
  w.set("t.empty_string", MetaValue::string(""));
  w.set("t.nul_string", MetaValue::string(std::string("a\0b", 3)));
  const std::vector<std::string> strings{"a", "", "Ġthe", "<|im_end|>"};
  w.set("t.string_array", MetaValue::string_array(strings));
  const std::vector<float> floats{0.0f, -1.0f, 3.25f};
  w.set("t.f32_array", MetaValue::f32_array(floats));
  const std::vector<std::int32_t> ints{1, -2, 2147483647};
  w.set("t.i32_array", MetaValue::i32_array(ints));
  w.set("t.u8_array", MetaValue::array(MetaType::uint8, {MetaValue::u8(1), MetaValue::u8(255)}));
  w.set("t.bool_array", MetaValue::array(MetaType::boolean, {MetaValue::boolean(true), MetaValue::boolean(false)}));
  w.set("t.f64_array", MetaValue::array(MetaType::float64, {MetaValue::f64(1e300)}));
  w.set("t.u64_array", MetaValue::array(MetaType::uint64, {MetaValue::u64(1ull << 63)}));
  w.set("t.i64_array", MetaValue::array(MetaType::int64, {MetaValue::i64(-5)}));
  w.set("t.i16_array", MetaValue::array(MetaType::int16, {MetaValue::i16(-7)}));
  w.set("t.u16_array", MetaValue::array(MetaType::uint16, {MetaValue::u16(7)}));
  w.set("t.i8_array", MetaValue::array(MetaType::int8, {MetaValue::i8(-1)}));
  w.set("t.u32_array", MetaValue::array(MetaType::uint32, {MetaValue::u32(9)}));
  w.set("t.empty_array", MetaValue::array(MetaType::float32, {}));
  w.set("t.nested", MetaValue::array(MetaType::array, {MetaValue::i32_array(ints), MetaValue::array(MetaType::int32, {})}));
  w.add_tensor("f32", GgmlType::f32, {7}, pattern(28, 1));
  w.add_tensor("f16", GgmlType::f16, {3, 5}, pattern(30, 2));
  w.add_tensor("bf16", GgmlType::bf16, {4, 1, 2}, pattern(16, 3));
  w.add_tensor("q4_0", GgmlType::q4_0, {64, 3}, pattern(2 * 3 * 18, 4));
  w.add_tensor("q4_1", GgmlType::q4_1, {32, 2, 2}, pattern(4 * 20, 5));
  w.add_tensor("q8_0", GgmlType::q8_0, {96, 1}, pattern(3 * 34, 6));
  w.add_tensor("q8_1", GgmlType::q8_1, {32}, pattern(36, 7));
  w.add_tensor("q6_k", GgmlType::q6_k, {256, 2}, pattern(2 * 210, 8));
  w.add_tensor("scalar", GgmlType::f32, {}, pattern(4, 9));
  w.add_tensor("empty", GgmlType::f32, {0, 4}, std::vector<std::byte>{});
  return w;
}

void check_round_trip(const GgufWriter& w, const GgufFile& f, std::uint32_t version) {
  CHECK(f.version() == version);
  CHECK(f.alignment() == w.alignment());
  CHECK(f.data_offset() % f.alignment() == 0);
  const auto expected = w.to_bytes();
  CHECK(f.file_size() == expected.size());
  const GgufFile again = GgufFile::from_bytes(expected);
  REQUIRE(f.metadata().size() == again.metadata().size());
  for (std::size_t i = 0; i < f.metadata().size(); ++i) {
    CHECK(f.metadata()[i].first == again.metadata()[i].first);
    CHECK(f.metadata()[i].second == again.metadata()[i].second);
  }
  REQUIRE(f.tensors().size() == 10);
  unsigned seed = 1;
  for (const auto& t : f.tensors()) {
    CAPTURE(t.name);
    CHECK(t.offset % f.alignment() == 0);
    CHECK(t.data != nullptr);
    const auto want = pattern(t.bytes, seed++);
    if (t.name == "empty") {
      CHECK(t.bytes == 0);
      continue;
    }
    CHECK(std::memcmp(t.data, want.data(), t.bytes) == 0);
  }
}

}  // namespace

TEST_CASE("GGUF round trip keeps every metadata type and tensor") {
  const GgufWriter w = every_type_writer();
  TempFile file;
  w.write(file.path());
  const GgufFile f = GgufFile::open(file.path());
  check_round_trip(w, f, 3);

  CHECK(f.at("t.u8").type() == MetaType::uint8);
  CHECK(f.get_uint("t.u8") == 250);
  CHECK(f.get_int("t.i8") == -120);
  CHECK(f.get_int("t.u16") == 65000);
  CHECK(f.get_int("t.i16") == -32000);
  CHECK(f.get_uint("t.u32") == 4000000000u);
  CHECK(f.get_int("t.i32") == -2000000000);
  CHECK(f.get_uint("t.u64") == std::numeric_limits<std::uint64_t>::max());
  CHECK(f.get_int("t.i64") == std::numeric_limits<std::int64_t>::min());
  CHECK(f.get_float("t.f32") == doctest::Approx(1.5e-5).epsilon(1e-6));
  CHECK(f.at("t.f32").as_float() == static_cast<double>(1.5e-5f));
  CHECK(f.get_float("t.f64") == -2.718281828459045);
  CHECK(f.get_bool("t.bool_true"));
  CHECK_FALSE(f.get_bool("t.bool_false"));
  CHECK(f.get_string("t.string") == "héllo 日本 \n");
  CHECK(f.get_string("t.empty_string").empty());
  CHECK(f.get_string("t.nul_string") == std::string("a\0b", 3));
  CHECK(f.get_string_array("t.string_array") == std::vector<std::string>{"a", "", "Ġthe", "<|im_end|>"});
  CHECK(f.get_float_array("t.f32_array") == std::vector<float>{0.0f, -1.0f, 3.25f});
  CHECK(f.get_int_array("t.i32_array") == std::vector<std::int32_t>{1, -2, 2147483647});
  CHECK(f.at("t.u8_array").array_type() == MetaType::uint8);
  CHECK(f.at("t.u8_array")[1].as_uint() == 255);
  CHECK(f.at("t.bool_array")[0].as_bool());
  CHECK(f.at("t.f64_array")[0].as_float() == 1e300);
  CHECK(f.at("t.u64_array")[0].as_uint() == (1ull << 63));
  CHECK(f.get_int_array("t.i64_array") == std::vector<std::int32_t>{-5});
  CHECK(f.get_int_array("t.i16_array") == std::vector<std::int32_t>{-7});
  CHECK(f.get_int_array("t.u16_array") == std::vector<std::int32_t>{7});
  CHECK(f.get_int_array("t.i8_array") == std::vector<std::int32_t>{-1});
  CHECK(f.get_int_array("t.u32_array") == std::vector<std::int32_t>{9});
  CHECK(f.at("t.empty_array").size() == 0);
  CHECK(f.at("t.empty_array").array_type() == MetaType::float32);
  const MetaValue& nested = f.at("t.nested");
  CHECK(nested.array_type() == MetaType::array);
  REQUIRE(nested.size() == 2);
  CHECK(nested[0][2].as_int() == 2147483647);
  CHECK(nested[1].size() == 0);
  CHECK(nested.describe().find("[[1, -2, 2147483647], []]") == 0);

  const TensorInfo& q6 = f.tensor("q6_k");
  CHECK(q6.type == GgmlType::q6_k);
  CHECK(q6.shape == std::vector<std::int64_t>{256, 2});
  CHECK(q6.elements() == 512);
  CHECK(q6.rows() == 2);
  CHECK(q6.row_bytes() == 210);
  CHECK(f.tensor("scalar").elements() == 1);
  CHECK(f.find_tensor("missing") == nullptr);
}

TEST_CASE("GGUF version 2 files and custom alignment read back") {
  GgufWriter v2 = every_type_writer(2);
  check_round_trip(v2, GgufFile::from_bytes(v2.to_bytes()), 2);

  GgufWriter aligned = every_type_writer();
  aligned.set("general.alignment", MetaValue::u32(256));
  const GgufFile f = GgufFile::from_bytes(aligned.to_bytes());
  CHECK(f.alignment() == 256);
  check_round_trip(aligned, f, 3);
  CHECK(f.data_offset() % 256 == 0);
}

TEST_CASE("GGUF getters name the key in every error") {
  const GgufFile f = GgufFile::from_bytes(every_type_writer().to_bytes());
  CHECK_THROWS_WITH_AS(f.at("nope"), doctest::Contains("'nope' is missing"), GgufError);
  CHECK_THROWS_WITH_AS(f.get_int("t.string"), doctest::Contains("'t.string'"), GgufError);
  CHECK_THROWS_WITH_AS(f.get_string("t.u8"), doctest::Contains("uint8, expected string"), GgufError);
  CHECK_THROWS_WITH_AS(f.get_uint("t.i8"), doctest::Contains("negative"), GgufError);
  CHECK_THROWS_WITH_AS(f.get_int("t.u64"), doctest::Contains("does not fit"), GgufError);
  CHECK_THROWS_WITH_AS(f.get_bool("t.u8"), doctest::Contains("'t.u8'"), GgufError);
  CHECK_THROWS_WITH_AS(f.get_string_array("t.f32_array"), doctest::Contains("'t.f32_array'"), GgufError);
  CHECK_THROWS_AS(f.get_int_array("t.u64_array"), GgufError);
  CHECK_THROWS_AS(f.at("t.u8")[0], GgufError);
  CHECK_THROWS_AS(f.at("t.u8_array")[2], GgufError);
  CHECK(f.get_int_or("absent", 42) == 42);
  CHECK(f.get_int_or("t.i8", 42) == -120);
  CHECK(f.get_float_or("absent", 0.5) == 0.5);
  CHECK(f.get_string_or("absent", "x") == "x");
  CHECK_THROWS_AS(f.get_int_or("t.string", 1), GgufError);
  CHECK_THROWS_WITH_AS(f.tensor("nope"), doctest::Contains("tensor 'nope' is missing"), GgufError);
  CHECK(f.architecture() == "llama");
  CHECK_NOTHROW(f.require_architecture("llama"));
  CHECK_THROWS_WITH_AS(f.require_architecture("gpt2"), doctest::Contains("architecture is 'llama', expected 'gpt2'"),
                       GgufError);
}

TEST_CASE("GGUF writer rejects inconsistent input") {
  GgufWriter w;
  CHECK_THROWS_AS(w.add_tensor("a", GgmlType::q4_0, {32}, std::vector<std::byte>(17)), GgufError);
  CHECK_THROWS_WITH_AS(w.add_tensor("a", GgmlType::q4_0, {31}, std::vector<std::byte>(18)),
                       doctest::Contains("not a multiple"), GgufError);
  w.add_tensor("a", GgmlType::f32, {1}, std::vector<std::byte>(4));
  CHECK_THROWS_WITH_AS(w.add_tensor("a", GgmlType::f32, {1}, std::vector<std::byte>(4)), doctest::Contains("duplicate"),
                       GgufError);
  CHECK_THROWS_AS(w.set("general.alignment", MetaValue::u32(48)), GgufError);
  CHECK_THROWS_AS(w.set("general.alignment", MetaValue::u64(64)), GgufError);
  CHECK_THROWS_AS(MetaValue::array(MetaType::int32, {MetaValue::u8(1)}), GgufError);
  w.set("k", MetaValue::u8(1));
  w.set("k", MetaValue::string("replaced"));
  const GgufFile f = GgufFile::from_bytes(w.to_bytes());
  CHECK(f.metadata().size() == 1);
  CHECK(f.get_string("k") == "replaced");
  CHECK_THROWS_AS(w.write("/nonexistent-dir/x.gguf"), GgufError);
  CHECK_THROWS_AS(GgufFile::open("/nonexistent-dir/x.gguf"), GgufError);
}

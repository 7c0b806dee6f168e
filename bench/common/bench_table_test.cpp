#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>
#include <rapidjson/document.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_table.h"

namespace pb = podworker::bench;

namespace {

rapidjson::Document read_json(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  rapidjson::Document doc;
  doc.Parse(text.str().c_str());
  REQUIRE_FALSE(doc.HasParseError());
  return doc;
}

}  // namespace

TEST_CASE("--json is taken out of argv, the other arguments stay in order") {
  std::string a0 = "bench", a1 = "--rtt", a2 = "0,5", a3 = "--json", a4 = "out.json",
              a5 = "--no-sdk";
  std::vector<char*> argv{a0.data(), a1.data(), a2.data(), a3.data(),
                          a4.data(), a5.data(), nullptr};
  int argc = 6;
  CHECK(pb::take_json_option(argc, argv.data()) == "out.json");
  REQUIRE(argc == 4);
  CHECK(std::string(argv[1]) == "--rtt");
  CHECK(std::string(argv[2]) == "0,5");
  CHECK(std::string(argv[3]) == "--no-sdk");
  CHECK(argv[4] == nullptr);

  std::string b1 = "--json=x.json";
  std::vector<char*> argv2{a0.data(), b1.data(), nullptr};
  argc = 2;
  CHECK(pb::take_json_option(argc, argv2.data()) == "x.json");
  CHECK(argc == 1);

  std::vector<char*> none{a0.data(), a1.data(), a2.data(), nullptr};
  argc = 3;
  CHECK(pb::take_json_option(argc, none.data()).empty());
  CHECK(argc == 3);
}

TEST_CASE("--json without a file name is an error") {
  std::string a0 = "bench", a1 = "--json", a2 = "--json=";
  std::vector<char*> argv{a0.data(), a1.data(), nullptr};
  int argc = 2;
  CHECK_THROWS_AS(pb::take_json_option(argc, argv.data()), std::invalid_argument);
  std::vector<char*> argv2{a0.data(), a2.data(), nullptr};
  argc = 2;
  CHECK_THROWS_AS(pb::take_json_option(argc, argv2.data()), std::invalid_argument);
}

TEST_CASE("rows keep their types, a missing figure is null, and a short row is refused") {
  const auto path = std::filesystem::temp_directory_path() / "podworker-bench-table-test.json";
  pb::Report report("bench_test");
  auto& t = report.table("rows");
  t.set_columns({"worker", "C", "jobs/s"});
  t.add({std::string("podworker"), std::int64_t{8}, 1234.5});
  t.add({std::string("runpod-sdk"), std::int64_t{8}, std::nan("")});
  CHECK_THROWS_AS(t.add({std::string("short")}), std::logic_error);
  report.table("empty").set_columns({"x"});
  report.write(path.string());

  const auto doc = read_json(path);
  std::filesystem::remove(path);
  CHECK(std::string(doc["program"].GetString()) == "bench_test");
  const auto& tables = doc["tables"];
  REQUIRE(tables.Size() == 2);
  const auto& rows = tables[0]["rows"];
  REQUIRE(rows.Size() == 2);
  CHECK(std::string(rows[0][0].GetString()) == "podworker");
  CHECK(rows[0][1].IsInt64());
  CHECK(rows[0][1].GetInt64() == 8);
  CHECK(rows[0][2].GetDouble() == doctest::Approx(1234.5));
  CHECK(rows[1][2].IsNull());
  CHECK(tables[1]["rows"].Size() == 0);
}

TEST_CASE("an unwritable path is a clear error; an empty one writes nothing") {
  pb::Report report("bench_test");
  CHECK_NOTHROW(report.write(""));
  CHECK_THROWS_WITH_AS(report.write("/nonexistent-dir/x.json"), doctest::Contains("cannot write"),
                       std::runtime_error);
}

TEST_CASE("header and row print as printf does and keep the printed values") {
  pb::Table t("printed");
  t.header("%-8s %4s %8s\n", "worker", "C", "jobs/s");
  const std::string worker = "podworker";
  t.row("%-8s %4d %8.1f\n", worker, 8, 1234.5);
  t.row("%-8s %4llu %8.1f\n", "sdk", 2ull, 1.5f);
  CHECK(t.columns() == std::vector<std::string>{"worker", "C", "jobs/s"});
  REQUIRE(t.rows().size() == 2);
  CHECK(std::get<std::string>(t.rows()[0][0]) == "podworker");
  CHECK(std::get<std::int64_t>(t.rows()[0][1]) == 8);
  CHECK(std::get<double>(t.rows()[0][2]) == doctest::Approx(1234.5));
  CHECK(std::get<std::string>(t.rows()[1][0]) == "sdk");
  CHECK(std::get<std::int64_t>(t.rows()[1][1]) == 2);
  CHECK(std::get<double>(t.rows()[1][2]) == doctest::Approx(1.5));
}

// The benchmarks' tables: each row is printed as it always was (printf with the program's own
// format) and kept, so that `--json FILE` can write every table for bench/plot.py without each
// program growing a JSON writer of its own.
#pragma once

#include <cstdint>
#include <cstdio>
#include <deque>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace podworker::bench {

using Cell = std::variant<std::string, double, std::int64_t>;

namespace detail {
template <class T>
decltype(auto) printf_arg(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v.c_str();
  } else {
    return (v);
  }
}
template <class T>
Cell cell(const T& v) {
  if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return std::string(std::string_view(v));
  } else if constexpr (std::is_floating_point_v<T>) {
    return static_cast<double>(v);
  } else {
    static_assert(std::is_integral_v<T>, "a table cell is text or a number");
    return static_cast<std::int64_t>(v);
  }
}
}  // namespace detail

class Table {
 public:
  explicit Table(std::string name) : name_(std::move(name)) {}

  // Prints the header line and takes its labels as the column names.
  template <class... Names>
  void header(const char* format, const Names&... names) {
    std::printf(format, detail::printf_arg(names)...);
    columns_ = {std::string(std::string_view(names))...};
  }
  // Prints a row and keeps its values, as numbers where the program printed numbers.
  template <class... Values>
  void row(const char* format, const Values&... values) {
    std::printf(format, detail::printf_arg(values)...);
    add({detail::cell(values)...});
  }
  // For a table whose text lines do not map one value to one printf argument.
  void set_columns(std::vector<std::string> columns) { columns_ = std::move(columns); }
  void add(std::vector<Cell> cells);

  const std::string& name() const { return name_; }
  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<std::vector<Cell>>& rows() const { return rows_; }

 private:
  std::string name_;
  std::vector<std::string> columns_;
  std::vector<std::vector<Cell>> rows_;
};

// All the tables of one run of one program.
class Report {
 public:
  explicit Report(std::string program) : program_(std::move(program)) {}
  // A new table; the reference stays valid for the Report's life.
  Table& table(std::string name) { return tables_.emplace_back(std::move(name)); }
  // {"program": ..., "tables": [{"name", "columns": [...], "rows": [[...], ...]}]}; does nothing
  // for an empty path, throws std::runtime_error when the file cannot be written.
  void write(const std::string& path) const;

 private:
  std::string program_;
  std::deque<Table> tables_;
};

// Removes `--json FILE` (or `--json=FILE`) from argv and returns FILE (empty when absent), so that
// each program's own option parsing stays as it was. Throws std::invalid_argument without a FILE.
std::string take_json_option(int& argc, char** argv);

}  // namespace podworker::bench

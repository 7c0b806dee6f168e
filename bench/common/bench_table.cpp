#include "bench_table.h"

#include <cmath>
#include <fstream>
#include <stdexcept>

#include <rapidjson/ostreamwrapper.h>
#include <rapidjson/prettywriter.h>

namespace podworker::bench {

void Table::add(std::vector<Cell> cells) {
  // A mismatch is a bug in the program's table, not in its input: say which table.
  if (cells.size() != columns_.size())
    throw std::logic_error("table " + name_ + ": row of " + std::to_string(cells.size()) +
                           " values for " + std::to_string(columns_.size()) + " columns");
  rows_.push_back(std::move(cells));
}

void Report::write(const std::string& path) const {
  if (path.empty()) return;
  std::ofstream out(path);
  if (!out) throw std::runtime_error("cannot write " + path);
  rapidjson::OStreamWrapper stream(out);
  rapidjson::PrettyWriter<rapidjson::OStreamWrapper> w(stream);
  w.SetFormatOptions(
      rapidjson::kFormatSingleLineArray);  // arrays on one line, objects still indented
  w.StartObject();
  w.Key("program");
  w.String(program_.c_str());
  w.Key("tables");
  w.StartArray();
  for (const auto& t : tables_) {
    w.StartObject();
    w.Key("name");
    w.String(t.name().c_str());
    w.Key("columns");
    w.StartArray();
    for (const auto& c : t.columns()) w.String(c.c_str());
    w.EndArray();
    w.Key("rows");
    w.StartArray();
    for (const auto& r : t.rows()) {
      w.StartArray();
      for (const auto& c : r) {
        if (const auto* s = std::get_if<std::string>(&c)) {
          w.String(s->c_str());
        } else if (const auto* i = std::get_if<std::int64_t>(&c)) {
          w.Int64(*i);
        } else if (const double d = std::get<double>(c); std::isfinite(d)) {
          w.Double(d);
        } else {
          w.Null();  // JSON has no NaN or infinity; a failed measurement reads as missing
        }
      }
      w.EndArray();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  out << '\n';
  if (!out.flush()) throw std::runtime_error("cannot write " + path);
}

std::string take_json_option(int& argc, char** argv) {
  std::string path;
  int kept = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--json") {
      if (i + 1 >= argc) throw std::invalid_argument("--json needs a file name");
      path = argv[++i];
    } else if (arg.starts_with("--json=")) {
      path = std::string(arg.substr(7));
      if (path.empty()) throw std::invalid_argument("--json needs a file name");
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  return path;
}

}  // namespace podworker::bench

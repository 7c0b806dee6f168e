// A handler's own configuration: settings it declares (name, type, default, help) and the values
// the worker resolved for them at start from `--set NAME=VALUE`, `PODWORKER_<HANDLER>_<NAME>`
// variables or a JSON config file (precedence and sources: docs/handlers.md#settings). A value
// that does not parse stops the worker at start with a message naming the setting and its
// source, so init() reads settings that are known to be valid.
#pragma once

#include <charconv>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>
#include <vector>

namespace podworker {

enum class SettingType { string, integer, number, boolean };

inline std::string_view setting_type_name(SettingType type) {
  switch (type) {
    case SettingType::string:
      return "string";
    case SettingType::integer:
      return "integer";
    case SettingType::number:
      return "number";
    case SettingType::boolean:
      return "boolean";
  }
  return "string";
}

// One declared setting. `name` is lower_snake_case: `--set max_sequences=8`, and the variable is
// PODWORKER_<HANDLER>_MAX_SEQUENCES. `env_aliases` are older variable names still honoured (below
// the canonical one), so a handler can adopt settings without breaking deployed configurations.
// Every member has a default member initializer, so designated initializers may leave any out
// without -Wmissing-field-initializers.
struct Setting {
  std::string name = {};
  SettingType type = SettingType::string;
  std::string default_value = {};  // written as on the command line; must parse as `type`
  std::string help = {};
  std::int64_t min = std::numeric_limits<std::int64_t>::min();  // integers only
  std::int64_t max = std::numeric_limits<std::int64_t>::max();
  std::vector<std::string> env_aliases = {};
};

using SettingValue = std::variant<std::string, std::int64_t, double, bool>;

// Parses `text` as `setting`'s type; throws std::invalid_argument with a message naming what
// was expected (the caller prefixes where the text came from).
inline SettingValue parse_setting_value(const Setting& setting, std::string_view text) {
  switch (setting.type) {
    case SettingType::string:
      return std::string(text);
    case SettingType::integer: {
      std::int64_t v = 0;
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || ptr != text.data() + text.size() || v < setting.min ||
          v > setting.max) {
        std::string range;
        if (setting.min != std::numeric_limits<std::int64_t>::min() ||
            setting.max != std::numeric_limits<std::int64_t>::max()) {
          range = " in [" + std::to_string(setting.min) + ", " + std::to_string(setting.max) + "]";
        }
        throw std::invalid_argument("must be an integer" + range + ", got \"" + std::string(text) +
                                    "\"");
      }
      return v;
    }
    case SettingType::number: {
      double v = 0;
      const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
      if (ec != std::errc() || ptr != text.data() + text.size()) {
        throw std::invalid_argument("must be a number, got \"" + std::string(text) + "\"");
      }
      return v;
    }
    case SettingType::boolean:
      if (text == "true" || text == "1" || text == "yes" || text == "on") return true;
      if (text == "false" || text == "0" || text == "no" || text == "off") return false;
      throw std::invalid_argument("must be true or false (also 1/0, yes/no, on/off), got \"" +
                                  std::string(text) + "\"");
  }
  return std::string(text);
}

// The resolved values of one handler's settings, and where each came from.
class Settings {
 public:
  // Every declared setting at its default (tests, and handlers constructed outside a worker).
  static Settings defaults(const std::vector<Setting>& declared) {
    Settings s;
    for (const auto& d : declared)
      s.set(d.name, parse_setting_value(d, d.default_value), "default");
    return s;
  }

  void set(std::string name, SettingValue value, std::string source) {
    values_[std::move(name)] = Entry{std::move(value), std::move(source)};
  }
  bool contains(std::string_view name) const { return values_.find(name) != values_.end(); }

  // Typed reads. Asking for a setting the handler did not declare, or with another type, is a bug
  // in the handler: std::logic_error.
  const std::string& get_string(std::string_view name) const { return get<std::string>(name); }
  std::int64_t get_int(std::string_view name) const { return get<std::int64_t>(name); }
  double get_number(std::string_view name) const { return get<double>(name); }
  bool get_bool(std::string_view name) const { return get<bool>(name); }
  // "default", "file FILE", "PODWORKER_..." (the variable) or "--set".
  const std::string& source(std::string_view name) const { return entry(name).source; }

 private:
  struct Entry {
    SettingValue value;
    std::string source;
  };
  const Entry& entry(std::string_view name) const {
    const auto it = values_.find(name);
    if (it == values_.end())
      throw std::logic_error("setting \"" + std::string(name) + "\" was not declared");
    return it->second;
  }
  template <typename T>
  const T& get(std::string_view name) const {
    const T* v = std::get_if<T>(&entry(name).value);
    if (v == nullptr)
      throw std::logic_error("setting \"" + std::string(name) + "\" read with the wrong type");
    return *v;
  }

  std::map<std::string, Entry, std::less<>> values_;
};

}  // namespace podworker

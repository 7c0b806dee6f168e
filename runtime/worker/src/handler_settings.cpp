// A handler's settings from their sources, and the context init() gets. Everything is checked at
// start: a worker that would fail on its first job because of a typo in its configuration fails
// before it takes one, saying which setting and where the value came from.
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "podworker/worker.h"

namespace podworker {
namespace {

const char* env_or_null(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v != nullptr && *v != '\0' ? v : nullptr;
}

std::string declared_names(const std::vector<Setting>& declared) {
  std::string out;
  for (const auto& d : declared) out += (out.empty() ? "" : ", ") + d.name;
  return out.empty() ? "none" : out;
}

SettingValue parse_from(const std::string& handler_name, const Setting& setting,
                        std::string_view text, const std::string& source) {
  try {
    return parse_setting_value(setting, text);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("setting " + handler_name + "." + setting.name + " (from " +
                                source + ") " + e.what());
  }
}

// The config file's value for one setting: a JSON value of the setting's type, or a string
// written as on the command line.
SettingValue from_json(const std::string& handler_name, const Setting& setting,
                       const json::Value& v, const std::string& source) {
  if (v.IsString())
    return parse_from(handler_name, setting, {v.GetString(), v.GetStringLength()}, source);
  if (setting.type == SettingType::boolean && v.IsBool()) return v.GetBool();
  if (setting.type == SettingType::number && v.IsNumber()) return v.GetDouble();
  if (setting.type == SettingType::integer && v.IsInt64()) {
    return parse_from(handler_name, setting, std::to_string(v.GetInt64()), source);  // range check
  }
  throw std::invalid_argument("setting " + handler_name + "." + setting.name + " (from " + source +
                              ") must be a " + std::string(setting_type_name(setting.type)) +
                              ", got " + json::to_string(v).substr(0, 100));
}

std::vector<std::string> split_devices(std::string_view list) {
  std::vector<std::string> out;
  std::size_t begin = 0;
  while (begin <= list.size()) {
    const std::size_t comma = std::min(list.find(',', begin), list.size());
    if (comma > begin) out.emplace_back(list.substr(begin, comma - begin));
    begin = comma + 1;
  }
  return out;
}

}  // namespace

std::string setting_env_name(std::string_view handler_name, std::string_view setting_name) {
  std::string out = "PODWORKER_";
  const auto add = [&out](std::string_view part) {
    for (const char c : part) {
      out += std::isalnum(static_cast<unsigned char>(c))
                 ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
                 : '_';
    }
  };
  add(handler_name);
  out += '_';
  add(setting_name);
  return out;
}

Settings resolve_settings(const std::string& handler_name, const std::vector<Setting>& declared,
                          const std::vector<std::pair<std::string, std::string>>& flags,
                          const std::string& config_file) {
  const auto find = [&](std::string_view name) -> const Setting* {
    for (const auto& d : declared) {
      if (d.name == name) return &d;
    }
    return nullptr;
  };
  for (const auto& [name, value] : flags) {
    if (find(name) == nullptr) {
      throw std::invalid_argument("--set " + name + ": handler " + handler_name +
                                  " has no setting \"" + name +
                                  "\" (its settings: " + declared_names(declared) + ")");
    }
  }

  json::Document file;
  const std::string file_source = "file " + config_file;
  if (!config_file.empty()) {
    std::ifstream in(config_file, std::ios::binary);
    if (!in) throw std::invalid_argument("config file " + config_file + " cannot be read");
    std::ostringstream text;
    text << in.rdbuf();
    try {
      file = json::parse_object(text.str(), 1 << 20);
    } catch (const JsonError& e) {
      throw std::invalid_argument("config file " + config_file +
                                  " is not a JSON object: " + e.what());
    }
    for (const auto& m : file.GetObject()) {
      const std::string key(m.name.GetString(), m.name.GetStringLength());
      if (find(key) == nullptr) {
        throw std::invalid_argument("config file " + config_file + ": handler " + handler_name +
                                    " has no setting \"" + key +
                                    "\" (its settings: " + declared_names(declared) + ")");
      }
    }
  }

  Settings out;
  for (const auto& d : declared) {
    // The default must parse too: a handler whose own default is broken says so at start.
    SettingValue value = parse_from(handler_name, d, d.default_value, "the handler's default");
    std::string source = "default";
    if (const json::Value* v = file.IsObject() ? json::find(file, d.name) : nullptr; v != nullptr) {
      value = from_json(handler_name, d, *v, file_source);
      source = file_source;
    }
    // Aliases rank below the canonical name, the first alias above the later ones.
    for (auto it = d.env_aliases.rbegin(); it != d.env_aliases.rend(); ++it) {
      if (const char* v = env_or_null(*it)) {
        value = parse_from(handler_name, d, v, *it);
        source = *it;
      }
    }
    if (const std::string name = setting_env_name(handler_name, d.name);
        const char* v = env_or_null(name)) {
      value = parse_from(handler_name, d, v, name);
      source = name;
    }
    for (const auto& [name, text] : flags) {
      if (name == d.name) {
        value = parse_from(handler_name, d, text, "--set");
        source = "--set";
      }
    }
    out.set(d.name, std::move(value), std::move(source));
  }
  return out;
}

HandlerContext make_handler_context(const WorkerOptions& options, const Handler& handler) {
  HandlerContext context;
  context.handler_name = options.handler;
  context.worker_id = options.worker_id;
  std::string config_file = options.config_file;
  if (config_file.empty()) {
    if (const char* v = env_or_null("PODWORKER_CONFIG")) config_file = v;
  }
  context.settings =
      resolve_settings(options.handler, handler.settings(), options.setting_flags, config_file);
  if (const char* v = env_or_null("CUDA_VISIBLE_DEVICES")) {
    context.devices = split_devices(v);
  } else if (const char* n = env_or_null("NVIDIA_VISIBLE_DEVICES")) {
    context.devices = split_devices(n);
  }
  context.log = Logger(options.handler);
  context.concurrency = options.concurrency;
  return context;
}

}  // namespace podworker

#include "error_report.h"

#include <cxxabi.h>
#include <execinfo.h>

#include <cstdlib>
#include <exception>
#include <memory>
#include <typeinfo>

#include "podworker/json.h"
#include "podworker/worker.h"

namespace podworker::worker {
namespace {

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

std::string backtrace_text() {
  void* frames[64];
  const int n = ::backtrace(frames, 64);
  std::unique_ptr<char*, void (*)(void*)> symbols(::backtrace_symbols(frames, n), std::free);
  std::string out = "Traceback (where the exception was caught, innermost first):\n";
  if (!symbols) return out + "  (unavailable)\n";
  // Frame 0 is this function and frame 1 the report builder: start at the catch site.
  for (int i = 2; i < n; ++i) {
    // "binary(mangled+0x1f) [0x...]": demangle the function name when there is one.
    std::string line = symbols.get()[i];
    const auto open = line.find('(');
    const auto plus = line.find('+', open == std::string::npos ? 0 : open);
    if (open != std::string::npos && plus != std::string::npos && plus > open + 1) {
      const std::string name = line.substr(open + 1, plus - open - 1);
      line.replace(open + 1, name.size(), demangle(name.c_str()));
    }
    // Template-heavy frames (lambdas inside std::thread) run to kilobytes; the start suffices.
    if (line.size() > 240) line = line.substr(0, 237) + "...";
    out += "  " + line + '\n';
  }
  return out;
}

}  // namespace

std::string current_exception_report(const std::string& hostname, const std::string& worker_id) {
  std::string type = "unknown exception";
  if (const std::type_info* info = abi::__cxa_current_exception_type()) type = demangle(info->name());
  std::string message;
  try {
    throw;
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "a non-standard exception was thrown";
  }
  const std::string traceback = backtrace_text();

  json::Document report;
  report.SetObject();
  auto& a = report.GetAllocator();
  report.AddMember("error_type", json::string_value(type, a), a);
  report.AddMember("error_message", json::string_value(message, a), a);
  report.AddMember("error_traceback", json::string_value(traceback, a), a);
  report.AddMember("hostname", json::string_value(hostname, a), a);
  report.AddMember("worker_id", json::string_value(worker_id, a), a);
  report.AddMember("runpod_version", json::string_value(kRunpodProtocolVersion, a), a);
  return json::to_string(report);
}

}  // namespace podworker::worker

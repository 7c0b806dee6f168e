#include "error_report.h"

#include <cxxabi.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string_view>
#include <typeinfo>

#include "podworker/json.h"
#include "podworker/worker.h"
#include "throw_site.h"

namespace podworker::worker {
namespace {

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

// One line per frame, innermost first: the demangled function and its file:line (from the
// debug information; the binary's symbol table when there is none). Never cut: a handler author
// needs the whole name to find the frame.
// Frames after the last one (among the first few) whose name contains `inner`: the capture's own
// frames are dropped, however many inlining left.
std::string frames_text(const boost::stacktrace::stacktrace& trace, std::string_view inner) {
  std::size_t start = 0;
  for (std::size_t k = 0; k < std::min<std::size_t>(trace.size(), 8); ++k) {
    if (trace[k].name().find(inner) != std::string::npos) start = k + 1;
  }
  std::string out;
  std::size_t i = 0;
  for (std::size_t k = start; k < trace.size(); ++k) {
    const auto& frame = trace[k];
    std::string name = frame.name();
    if (name.empty()) name = "??";
    out += "  #" + std::to_string(i++) + " " + name;
    if (const std::string file = frame.source_file(); !file.empty()) {
      out += " at " + file + ":" + std::to_string(frame.source_line());
    }
    out += '\n';
  }
  return out;
}

std::string traceback_text(const void* object) {
  if (object != nullptr) {
    if (const auto thrown = throw_site(object)) {
      return "Traceback (where the exception was thrown, innermost first):\n" +
             frames_text(*thrown, "__cxa_throw");
    }
  }
  // Thrown on another thread (an exception_ptr rethrown here) or by code the hook did not see.
  return "Traceback (where the exception was caught, innermost first; the throw site was not "
         "recorded):\n" +
         frames_text(boost::stacktrace::stacktrace(0, 128), "current_exception_report");
}

}  // namespace

std::string current_exception_report(const std::string& hostname, const std::string& worker_id) {
  std::string type = "unknown exception";
  if (const std::type_info* info = abi::__cxa_current_exception_type()) type = demangle(info->name());
  std::string message;
  const void* object = nullptr;
  try {
    throw;
  } catch (const std::exception& e) {
    message = e.what();
    object = dynamic_cast<const void*>(&e);  // the thrown object itself, as the hook saw it
  } catch (...) {
    message = "a non-standard exception was thrown";
  }
  const std::string traceback = traceback_text(object);

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

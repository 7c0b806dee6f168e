// Job JSON to handler input, both ways a textgen job arrives: a /run or /runsync body (the
// endpoint's parse_submission) whose `input` the handler reads with parse_native, and an OpenAI
// chat-completions body that the endpoint translates into {"openai_route", "openai_input"} and the
// handler reads with parse_openai. Bad input must end in JsonError or std::invalid_argument (the
// job's error), and what is accepted must hold to the limits the handler promises.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <stdexcept>
#include <string_view>

#include "job.h"
#include "openai.h"
#include "podworker/json.h"
#include "request.h"

using namespace podworker;
namespace textgen = podworker::handlers::textgen;

namespace {

const endpoint::PolicyLimits kLimits{std::chrono::milliseconds(600'000),
                                     std::chrono::milliseconds(5'000),
                                     std::chrono::milliseconds(7 * 24 * 3'600'000LL),
                                     std::chrono::milliseconds(24 * 3'600'000LL),
                                     std::chrono::milliseconds(10'000),
                                     std::chrono::milliseconds(7 * 24 * 3'600'000LL)};

// SmolLM2's context: both sides check max_tokens against the model's context, as under
// `worker --serve-api`.
const chat::ChatLimits kChat{8192};

void check(const textgen::Request& r) {
  if (r.max_tokens < 1 || r.max_tokens > kChat.max_context) std::abort();
}

// The handler's side: what TextgenHandler::execute does with a job's input before generating.
void handler_reads(const std::string& input_json) {
  const json::Document input = json::parse(input_json);  // the endpoint wrote it: it must parse
  try {
    const json::Value* route = input.IsObject() ? json::find(input, "openai_route") : nullptr;
    if (route != nullptr) {
      if (const json::Value* body = json::find(input, "openai_input"))
        check(textgen::parse_openai(*body, kChat));
    } else {
      check(textgen::parse_native(input, kChat));
    }
  } catch (const std::invalid_argument&) {  // chat::ChatRequestError included
  } catch (const JsonError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  try {
    endpoint::NewJob job;
    endpoint::parse_submission(body, kLimits, job);
    handler_reads(job.input_json);
  } catch (const JsonError&) {
  }
  try {
    const endpoint::OpenAiRequest request =
        endpoint::parse_openai_request(body, kLimits, "podworker", kChat.max_context);
    handler_reads(request.job.input_json);
  } catch (const JsonError&) {
  } catch (const std::invalid_argument&) {  // a value out of range: the route's 400
  }
  return 0;
}

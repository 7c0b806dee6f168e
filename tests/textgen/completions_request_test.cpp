// The request fields logprobs adds (podworker/chat_request.h): chat's logprobs / top_logprobs and
// the legacy completions form, checked by the one definition the endpoint and handler share.
#include <doctest/doctest.h>

#include <string>

#include "podworker/chat_request.h"
#include "podworker/json.h"

using namespace podworker;

namespace {

chat::ChatRequest parse(const std::string& body, chat::Form form) {
  const json::Document doc = json::parse(body);
  return chat::parse_chat_request(doc, form, {2048});
}

std::string param_of(const std::string& body, chat::Form form) {
  try {
    (void)parse(body, form);
  } catch (const chat::ChatRequestError& e) {
    return e.param();
  }
  return "(accepted)";
}

}  // namespace

TEST_CASE("chat logprobs: off by default, top_logprobs 0..20 with logprobs true") {
  const std::string m = R"("messages":[{"role":"user","content":"hi"}])";
  CHECK(parse("{" + m + "}", chat::Form::openai).top_logprobs == -1);
  CHECK(parse("{" + m + R"(,"logprobs":false})", chat::Form::openai).top_logprobs == -1);
  CHECK(parse("{" + m + R"(,"logprobs":true})", chat::Form::openai).top_logprobs == 0);
  CHECK(
      parse("{" + m + R"(,"logprobs":true,"top_logprobs":20})", chat::Form::openai).top_logprobs ==
      20);
  CHECK(parse("{" + m + R"(,"logprobs":true,"top_logprobs":null})", chat::Form::openai)
            .top_logprobs == 0);
  CHECK(param_of("{" + m + R"(,"logprobs":true,"top_logprobs":21})", chat::Form::openai) ==
        "top_logprobs");
  CHECK(param_of("{" + m + R"(,"logprobs":true,"top_logprobs":1.5})", chat::Form::openai) ==
        "top_logprobs");
  CHECK(param_of("{" + m + R"(,"top_logprobs":3})", chat::Form::openai) == "top_logprobs");
  CHECK(param_of("{" + m + R"(,"logprobs":1})", chat::Form::openai) == "logprobs");
}

TEST_CASE("legacy completions: a prompt, integer logprobs 0..5, max_tokens 16 by default") {
  const chat::ChatRequest r =
      parse(R"({"prompt":"Once","model":"m"})", chat::Form::openai_completions);
  CHECK(r.prompt == "Once");
  CHECK(r.messages.empty());
  CHECK(r.max_tokens == chat::kCompletionsDefaultMaxTokens);
  CHECK(r.top_logprobs == -1);
  CHECK(r.model == "m");
  CHECK(parse(R"({"prompt":["Once"],"logprobs":5,"stream":true})", chat::Form::openai_completions)
            .top_logprobs == 5);
  CHECK(parse(R"({"prompt":"a","logprobs":0})", chat::Form::openai_completions).top_logprobs == 0);
  CHECK(parse(R"({"prompt":"a","max_tokens":100})", chat::Form::openai_completions).max_tokens ==
        100);
  CHECK(param_of(R"({"prompt":"a","logprobs":6})", chat::Form::openai_completions) == "logprobs");
  CHECK(param_of(R"({"prompt":"a","logprobs":true})", chat::Form::openai_completions) ==
        "logprobs");
  CHECK(param_of(R"({"messages":[{"role":"user","content":"hi"}]})",
                 chat::Form::openai_completions) == "prompt");
  CHECK(param_of(R"({"prompt":["a","b"]})", chat::Form::openai_completions) == "prompt");
  CHECK(param_of(R"({"prompt":""})", chat::Form::openai_completions) == "prompt");
  CHECK(param_of(R"({"prompt":"a","echo":true})", chat::Form::openai_completions) == "echo");
  CHECK(param_of(R"({"prompt":"a","suffix":"b"})", chat::Form::openai_completions) == "suffix");
  CHECK(param_of(R"({"prompt":"a","best_of":2})", chat::Form::openai_completions) == "best_of");
  CHECK(param_of(R"({"prompt":"a","temperature":3})", chat::Form::openai_completions) ==
        "temperature");
  // The chat defaults are untouched: max_tokens stays 256 there.
  CHECK(parse(R"({"messages":[{"role":"user","content":"hi"}]})", chat::Form::openai).max_tokens ==
        256);
}

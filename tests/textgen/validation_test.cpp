// One definition of a chat request's valid values, two places it is enforced, over real HTTP: the
// endpoint's OpenAI route (400 before any job exists) and the textgen handler (a job sent through
// /run fails), with a real worker running the textgen handler on a generated model behind a real
// endpoint. Each bad value must give the same message in both places.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "http_client.h"
#include "podworker/chat_request.h"
#include "podworker/endpoint/server.h"
#include "podworker/worker.h"
#include "test_model_fixture.h"
#include "textgen_handler.h"

using namespace podworker;
using namespace std::chrono_literals;
using test::HttpClient;
using test::Response;

namespace {

constexpr const char* kChatPath = "/openai/v1/chat/completions";
constexpr const char* kHi = R"("messages": [{"role": "user", "content": "hi"}])";
constexpr int kContext = 96;

std::shared_ptr<llm::Generator> generator() {
  static std::shared_ptr<llm::Generator> g = [] {
    auto spec = testing::small_spec();
    spec.context = kContext;
    llm::BackendOptions o;
    o.threads = 2;
    o.max_sequences = 4;
    return std::shared_ptr<llm::Generator>(llm::Generator::load(
        testing::generated_model_path(spec, "validation"), llm::BackendKind::cpu, o));
  }();
  return g;
}

// The endpoint and a worker running the textgen handler, as `worker --serve-api` puts them
// together: the endpoint knows the handler's context.
struct Served {
  Served() : handler(generator()) {
    endpoint::Options eo;
    eo.port = 0;
    eo.rate_limit = false;
    eo.take_wait = 200ms;
    eo.stop_wait = 200ms;
    eo.openai_context = handler.chat_limits().max_context;
    server = std::make_unique<endpoint::Server>(eo);
    port = server->start();
    WorkerOptions wo;
    const std::string v2 = server->url() + "/v2/local";
    wo.take_url = v2 + "/job-take/$ID";
    wo.done_url = v2 + "/job-done/$RUNPOD_POD_ID/$ID";
    wo.stream_url = v2 + "/job-stream/$RUNPOD_POD_ID/$ID";
    wo.ping_url = v2 + "/ping/$RUNPOD_POD_ID";
    wo.worker_id = "validation-worker";
    worker = std::make_unique<Worker>(wo, handler);
    thread = std::jthread([this] { worker->run(); });
  }
  ~Served() {
    worker->stop();
    thread.join();
    server->stop();
  }
  handlers::textgen::TextgenHandler handler;
  std::unique_ptr<endpoint::Server> server;
  std::uint16_t port = 0;
  std::unique_ptr<Worker> worker;
  std::jthread thread;
};

std::string health_jobs(HttpClient& c) {
  const Response r = c.get("/health");
  REQUIRE(r.status == 200);
  return json::to_string(r.json()["jobs"]);
}

// Submits `input` through /run and returns the ended job's /status.
json::Document run_to_end(HttpClient& c, const std::string& input) {
  const Response submitted = c.post("/run", R"({"input": )" + input + "}");
  REQUIRE(submitted.status == 200);
  const std::string id = json::get_string(submitted.json(), "id");
  json::Document status;
  REQUIRE(test::eventually([&] {
    status = c.get("/status/" + id).json();
    const std::string s = json::get_string(status, "status");
    return s != "IN_QUEUE" && s != "IN_PROGRESS";
  }));
  return status;
}

struct BadCase {
  std::string fields;  // added to a valid request
  std::string param;
  std::string message;
  std::string code = "invalid_value";
};

}  // namespace

TEST_CASE(
    "chat request: a bad value is the OpenAI route's 400 and the same message fails a /run job") {
  const std::string ctx = std::to_string(kContext);
  const std::string over = std::to_string(kContext + 1);
  const std::vector<BadCase> cases = {
      {R"("temperature": -1)", "temperature", "\"temperature\" must be between 0 and 2; got -1"},
      {R"("temperature": 5)", "temperature", "\"temperature\" must be between 0 and 2; got 5"},
      {R"("temperature": 2.5)", "temperature", "\"temperature\" must be between 0 and 2; got 2.5"},
      {R"("temperature": "hot")", "temperature", "\"temperature\" must be a number",
       "invalid_type"},
      {R"("top_p": 2)", "top_p", "\"top_p\" must be between 0 and 1; got 2"},
      {R"("top_p": -0.5)", "top_p", "\"top_p\" must be between 0 and 1; got -0.5"},
      {R"("top_k": -1)", "top_k", "\"top_k\" must be between 0 and 1048576; got -1"},
      {R"("top_k": 1.5)", "top_k", "\"top_k\" must be an integer", "invalid_type"},
      {R"("seed": -1)", "seed", "\"seed\" must be between 0 and 9007199254740991; got -1"},
      {R"("seed": 18446744073709551615)", "seed",
       "\"seed\" must be between 0 and 9007199254740991; got 18446744073709551615"},
      {R"("max_tokens": 0)", "max_tokens",
       "\"max_tokens\" must be between 1 and " + ctx + " (the model's context holds " + ctx +
           " tokens, prompt and generated together); got 0"},
      {R"("max_tokens": )" + over, "max_tokens",
       "\"max_tokens\" must be between 1 and " + ctx + " (the model's context holds " + ctx +
           " tokens, prompt and generated together); got " + over},
      {R"("max_completion_tokens": 100000)", "max_completion_tokens",
       "\"max_completion_tokens\" must be between 1 and " + ctx + " (the model's context holds " +
           ctx + " tokens, prompt and generated together); got 100000"},
      {R"("n": 2)", "n", "\"n\" must be 1 (the only value supported); got 2", "unsupported_value"},
      {R"("presence_penalty": 0.5)", "presence_penalty",
       "\"presence_penalty\" must be 0 (the only value supported); got 0.5", "unsupported_value"},
      {R"("frequency_penalty": -1)", "frequency_penalty",
       "\"frequency_penalty\" must be 0 (the only value supported); got -1", "unsupported_value"},
      {R"("stop": ["a", "b", "c", "d", "e"])", "stop", "\"stop\" holds at most 4 strings; got 5"},
      {R"("stop": [""])", "stop", "each stop string must have 1 to 256 bytes"},
      {R"("stop": "")", "stop", "each stop string must have 1 to 256 bytes"},
      {R"("stop": [7])", "stop", "\"stop\" must be a string or an array of strings",
       "invalid_type"},
  };
  // Message-level mistakes replace the valid messages.
  const std::vector<BadCase> message_cases = {
      {R"("messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}])",
       "messages.[0].content.[0].type",
       "only text content parts are supported; got type \"image_url\"", "unsupported_value"},
      {R"("messages": [{"role": "user", "content": "a"}, {"role": "user", "content": [{"type": "text", "text": "b"}, {"type": "input_audio"}]}])",
       "messages.[1].content.[1].type",
       "only text content parts are supported; got type \"input_audio\"", "unsupported_value"},
      {R"("messages": [{"content": "no role"}])", "messages.[0].role",
       "each message needs a \"role\" string", "missing_required_parameter"},
      {R"("messages": [])", "messages", "\"messages\" must be a non-empty array", "invalid_type"},
  };

  Served s;
  HttpClient c(s.port);
  const auto check = [&](const std::string& body, const BadCase& bad) {
    CAPTURE(body);
    const std::string before = health_jobs(c);
    const Response r = c.post(kChatPath, body, {{"Content-Type", "application/json"}});
    CHECK(r.status == 400);
    const json::Document reply = r.json();
    REQUIRE(reply.HasMember("error"));
    const json::Value& error = reply["error"];
    CHECK(json::get_string(error, "message") == bad.message);
    CHECK(json::get_string(error, "type") == "invalid_request_error");
    CHECK(json::get_string(error, "param") == bad.param);
    CHECK(json::get_string(error, "code") == bad.code);
    CHECK(health_jobs(c) == before);  // no job was created

    // The same request through /run, in the OpenAI form and in the handler's native form.
    for (const std::string& input :
         {R"({"openai_route": "/v1/chat/completions", "openai_input": )" + body + "}", body}) {
      CAPTURE(input);
      const json::Document status = run_to_end(c, input);
      CHECK(json::get_string(status, "status") == "FAILED");
      CHECK(json::get_string(status, "error") == bad.message);
    }
  };
  for (const BadCase& bad : cases) check("{" + std::string(kHi) + ", " + bad.fields + "}", bad);
  for (const BadCase& bad : message_cases) check("{" + bad.fields + "}", bad);

  // Still serving: a good request runs and answers.
  const Response ok =
      c.post(kChatPath, "{" + std::string(kHi) + R"(, "max_tokens": 4, "temperature": 0})");
  CHECK(ok.status == 200);
  CHECK(json::get_string(ok.json(), "object") == "chat.completion");
}

TEST_CASE(
    "chat request: the table's bounds are enforced exactly, each value just past one refused") {
  // Every numeric field at its bounds is accepted and just past them refused, naming the field.
  for (const chat::NumericField& f : chat::kNumericFields) {
    CAPTURE(f.name);
    const double step = f.kind == chat::Kind::integer ? 1.0 : 0.25;
    const double max =
        (f.name == "max_tokens" || f.name == "max_completion_tokens") ? kContext : f.max;
    for (const double ok : {f.min, max}) {
      json::Document body = json::parse("{" + std::string(kHi) + "}");
      auto& a = body.GetAllocator();
      json::Value v(ok);
      if (f.kind == chat::Kind::integer) v.SetInt64(static_cast<std::int64_t>(ok));
      body.AddMember(json::string_value(f.name, a), v, a);
      CHECK_NOTHROW(chat::parse_chat_request(body, chat::Form::openai, {kContext}));
    }
    for (const double bad : {f.min - step, max + step}) {
      json::Document body = json::parse("{" + std::string(kHi) + "}");
      auto& a = body.GetAllocator();
      json::Value v(bad);
      if (f.kind == chat::Kind::integer) v.SetInt64(static_cast<std::int64_t>(bad));
      body.AddMember(json::string_value(f.name, a), v, a);
      try {
        (void)chat::parse_chat_request(body, chat::Form::native, {kContext});
        FAIL("accepted " << bad);
      } catch (const chat::ChatRequestError& e) {
        CHECK(e.param() == f.name);
      }
    }
  }
}

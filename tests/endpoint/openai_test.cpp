// The OpenAI-compatible routes over real HTTP: the test is the OpenAI client on one side and the
// worker (taking the job, checking its input, posting chunks and the result) on the other.
#include <doctest/doctest.h>

#include <string>
#include <thread>
#include <vector>

#include "endpoint_fixture.h"
#include "http_client.h"

using podworker::test::Endpoint;
using podworker::test::fast_options;
using podworker::test::str;
using podworker::test::take;

namespace {

constexpr const char* kChatPath = "/openai/v1/chat/completions";
constexpr const char* kRequest =
    R"({"model":"podworker","messages":[{"role":"user","content":"Hi there"}],"max_tokens":8})";
constexpr const char* kCompletion =
    R"({"id":"chatcmpl-1","object":"chat.completion","model":"podworker",)"
    R"("choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}})";

// Posts a chat-completions request on its own thread (it waits for the job) and returns it.
struct PendingRequest {
  PendingRequest(std::uint16_t port, std::string path, std::string body, podworker::test::Headers headers = {})
      : thread([this, port, path = std::move(path), body = std::move(body), headers = std::move(headers)] {
          HttpClient client(port);
          response = client.post(path, body, headers);
        }) {}
  Response get() {
    thread.join();
    return response;
  }
  Response response;
  std::jthread thread;
};

// The body of a raw HTTP response (after the header block).
std::string body_of(const std::string& raw) {
  const auto end = raw.find("\r\n\r\n");
  return end == std::string::npos ? std::string{} : raw.substr(end + 4);
}

std::string error_message(const Response& r) { return str(r.json()["error"], "message"); }
std::string error_type(const Response& r) { return str(r.json()["error"], "type"); }

}  // namespace

TEST_CASE("openai: a chat completion runs as a job and answers with the handler's output") {
  Endpoint ep;
  HttpClient worker(ep.port);
  PendingRequest request(ep.port, kChatPath, kRequest, {{"Content-Type", "application/json"}});

  pj::Document job = take(worker, "w1");
  const std::string id = str(job, "id");
  CHECK(str(job["input"], "openai_route") == "/v1/chat/completions");
  const pj::Value& body = job["input"]["openai_input"];
  CHECK(str(body, "model") == "podworker");
  CHECK(str(body["messages"][0], "content") == "Hi there");
  CHECK(body["max_tokens"].GetInt() == 8);

  worker.post("/v2/local/job-done/w1/" + id + "?isStream=false", std::string(R"({"output":)") + kCompletion + "}");
  const Response r = request.get();
  CHECK(r.status == 200);
  CHECK(r.content_type == "application/json");
  CHECK(r.body == kCompletion);

  // A generator handler yields the completion as its one chunk and returns no output; the route
  // under /v2/{endpoint_id}/ works the same.
  PendingRequest second(ep.port, "/v2/local/openai/v1/chat/completions", kRequest);
  const std::string id2 = str(take(worker, "w1"), "id");
  worker.post("/v2/local/job-stream/w1/" + id2, std::string(R"({"output":)") + kCompletion + "}");
  worker.post("/v2/local/job-done/w1/" + id2 + "?isStream=true", R"({"output":[]})");
  const Response r2 = second.get();
  CHECK(r2.status == 200);
  CHECK(r2.body == kCompletion);
}

TEST_CASE("openai: stream=true forwards the handler's SSE chunks live, byte for byte") {
  pe::Options o = fast_options();
  o.sse_keepalive = 60s;  // no keep-alive comment may land between the chunks this test compares
  Endpoint ep(o);
  HttpClient worker(ep.port);
  SseReader sse(ep.port, kChatPath,
                R"({"model":"podworker","stream":true,"messages":[{"role":"user","content":"Hi"}]})");

  pj::Document job = take(worker, "w1");
  const std::string id = str(job, "id");
  CHECK(str(job["input"], "openai_route") == "/v1/chat/completions");
  CHECK(job["input"]["openai_input"]["stream"].GetBool());

  const std::string chunk1 = "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"}}]}\n\n";
  const std::string chunk2 = "data: {\"choices\":[{\"delta\":{\"content\":\"lo\"}}]}\n\n";
  const std::string done = "data: [DONE]\n\n";
  auto post_chunk = [&](const std::string& text) {
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
    w.StartObject();
    w.Key("output");
    w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    w.EndObject();
    CHECK(worker.post("/v2/local/job-stream/w1/" + id, buffer.GetString()).status == 200);
  };
  post_chunk(chunk1);
  REQUIRE(sse.wait_for(chunk1));  // live: the first chunk arrives before the job ends
  post_chunk(chunk2);
  // A chunk that is not a string is framed as an SSE data line.
  CHECK(worker.post("/v2/local/job-stream/w1/" + id, R"({"output":{"note":1}})").status == 200);
  post_chunk(done);
  worker.post("/v2/local/job-done/w1/" + id + "?isStream=true", R"({"output":[]})");

  const std::string raw = sse.finish();
  CHECK(raw.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(raw.find("Content-Type: text/event-stream") != std::string::npos);
  CHECK(body_of(raw) == chunk1 + chunk2 + "data: {\"note\":1}\n\n" + done);
}

TEST_CASE("openai: a request without a model gets the endpoint's model; a named one is kept") {
  pe::Options o = fast_options();
  o.openai_model = "served-model";
  o.sse_keepalive = 60s;
  Endpoint ep(o);
  HttpClient worker(ep.port);
  for (const char* request : {R"({"messages":[{"role":"user","content":"Hi"}]})",
                              R"({"model":null,"messages":[{"role":"user","content":"Hi"}]})",
                              R"({"model":"","messages":[{"role":"user","content":"Hi"}],"max_tokens":3})"}) {
    CAPTURE(request);
    PendingRequest pending(ep.port, kChatPath, request);
    pj::Document job = take(worker, "w1");
    const pj::Value& body = job["input"]["openai_input"];
    CHECK(str(body, "model") == "served-model");
    CHECK(str(body["messages"][0], "content") == "Hi");  // the rest of the request is unchanged
    worker.post("/v2/local/job-done/w1/" + str(job, "id"), std::string(R"({"output":)") + kCompletion + "}");
    CHECK(pending.get().status == 200);
  }
  PendingRequest named(ep.port, kChatPath, R"({"model":"my-name","messages":[{"role":"user","content":"Hi"}]})");
  pj::Document job = take(worker, "w1");
  CHECK(str(job["input"]["openai_input"], "model") == "my-name");
  worker.post("/v2/local/job-done/w1/" + str(job, "id"), std::string(R"({"output":)") + kCompletion + "}");
  CHECK(named.get().status == 200);

  // stream_options travel to the handler as sent.
  SseReader sse(ep.port, kChatPath,
                R"({"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}]})");
  job = take(worker, "w1");
  const pj::Value& body = job["input"]["openai_input"];
  CHECK(str(body, "model") == "served-model");
  CHECK(body["stream_options"]["include_usage"].GetBool());
  worker.post("/v2/local/job-done/w1/" + str(job, "id"), R"({"output":"data: [DONE]\n\n"})");
  CHECK(body_of(sse.finish()) == "data: [DONE]\n\n");
}

TEST_CASE("openai: a failed job is a 500 with an OpenAI error; a timeout is a 504 naming the job") {
  pe::Options o = fast_options();
  o.sse_keepalive = 60s;
  o.runsync_wait_default = 5s;
  Endpoint ep(o);
  HttpClient worker(ep.port);

  PendingRequest plain(ep.port, kChatPath, kRequest);
  std::string id = str(take(worker, "w1"), "id");
  worker.post("/v2/local/job-done/w1/" + id, R"({"error":"the model is not loaded"})");
  Response r = plain.get();
  CHECK(r.status == 500);
  CHECK(error_message(r) == "the model is not loaded");
  CHECK(error_type(r) == "server_error");
  CHECK(str(r.json()["error"], "job_id") == id);

  // An exception report (a JSON string inside the error) gives its message.
  PendingRequest raised(ep.port, kChatPath, kRequest);
  id = str(take(worker, "w1"), "id");
  worker.post("/v2/local/job-done/w1/" + id,
              R"({"error":"{\"error_type\":\"ValueError\",\"error_message\":\"bad temperature\"}"})");
  r = raised.get();
  CHECK(r.status == 500);
  CHECK(error_message(r) == "ValueError: bad temperature");

  // Streaming: the failure arrives as an error event after what was already streamed.
  SseReader sse(ep.port, kChatPath, R"({"stream":true,"messages":[{"role":"user","content":"Hi"}]})");
  id = str(take(worker, "w1"), "id");
  worker.post("/v2/local/job-stream/w1/" + id, R"({"output":"data: {\"partial\":true}\n\n"})");
  worker.post("/v2/local/job-done/w1/" + id, R"({"error":"out of memory"})");
  const std::string body = body_of(sse.finish());
  CHECK(body.rfind("data: {\"partial\":true}\n\ndata: {\"error\":{\"message\":\"out of memory\"", 0) == 0);

  // No worker takes the job within the wait: 504 with the job's id; the job stays queued.
  o.runsync_wait_default = 50ms;
  Endpoint slow(o);
  HttpClient c(slow.port);
  r = c.post(kChatPath, kRequest);
  CHECK(r.status == 504);
  CHECK(error_type(r) == "timeout");
  const std::string queued = str(r.json()["error"], "job_id");
  CHECK(error_message(r).find(queued) != std::string::npos);
  CHECK(str(c.get("/status/" + queued).json(), "status") == "IN_QUEUE");
}

TEST_CASE("openai: bad bodies are 400 and queue nothing; wrong routes and methods; models") {
  pe::Options o = fast_options();
  o.openai_model = "smollm2-135m";
  Endpoint ep(o);
  HttpClient c(ep.port);
  for (const char* bad : {R"({"messages": [)", "[1, 2]", R"("text")", R"({"stream":"yes"})",
                          R"({"messages":"not a list"})", R"({"messages":[]})", R"({"messages":[1]})",
                          R"({"messages":[{"content":"no role"}]})",
                          R"({"messages":[{"role":"user","content":"x"}],"n":2})",
                          R"({"messages":[{"role":"user","content":"x"}],"temperature":"hot"})",
                          R"({"messages":[{"role":"user","content":"x"}],"max_tokens":0})",
                          R"({"messages":[{"role":"user","content":"x"}],"model":7})",
                          R"({"messages":[{"role":"user","content":"x"}],"stream":true,"stream_options":true})",
                          R"({"messages":[{"role":"user","content":"x"}],"stream_options":{"include_usage":1}})"}) {
    CAPTURE(bad);
    Response r = c.post(kChatPath, bad);
    CHECK(r.status == 400);
    CHECK(error_type(r) == "invalid_request_error");
    CHECK_FALSE(error_message(r).empty());
  }
  CHECK(c.get("/health").json()["jobs"]["inQueue"].GetInt() == 0);

  Response r = c.get("/openai/v1/models");
  CHECK(r.status == 200);
  pj::Document models = r.json();
  CHECK(str(models, "object") == "list");
  REQUIRE(models["data"].Size() == 1);
  CHECK(str(models["data"][0], "id") == "smollm2-135m");
  CHECK(str(models["data"][0], "object") == "model");
  CHECK(str(models["data"][0], "owned_by") == "podworker");
  CHECK(models["data"][0]["created"].IsInt64());
  CHECK(c.get("/v2/local/openai/v1/models").status == 200);

  // One model by id: the object alone, under either prefix; any other id is an OpenAI 404.
  for (const char* path : {"/openai/v1/models/smollm2-135m", "/v2/local/openai/v1/models/smollm2-135m/"}) {
    CAPTURE(path);
    r = c.get(path);
    CHECK(r.status == 200);
    const pj::Document model = r.json();
    CHECK(str(model, "id") == "smollm2-135m");
    CHECK(str(model, "object") == "model");
    CHECK(str(model, "owned_by") == "podworker");
    CHECK(model["created"].GetInt64() == models["data"][0]["created"].GetInt64());
  }
  for (const char* path : {"/openai/v1/models/gpt-4o", "/openai/v1/models/org/smollm2-135m",
                           "/v2/local/openai/v1/models/smollm2-135", "/openai/v1/models/smollm2%2D135m%2Fx"}) {
    CAPTURE(path);
    r = c.get(path);
    CHECK(r.status == 404);
    CHECK(error_type(r) == "not_found_error");
    CHECK(error_message(r).find("does not exist") != std::string::npos);
  }
  CHECK(c.get("/openai/v1/models/smollm2%2D135m").status == 200);  // the id is percent-decoded
  CHECK(c.post("/openai/v1/models/smollm2-135m").status == 405);

  r = c.get(kChatPath);
  CHECK(r.status == 405);
  CHECK(error_type(r) == "invalid_request_error");
  CHECK(c.post("/openai/v1/models").status == 405);
  r = c.post("/openai/v1/embeddings", "{}");
  CHECK(r.status == 404);
  CHECK(error_type(r) == "not_found_error");
  CHECK(c.get("/v2/elsewhere/openai/v1/models").status == 404);
}

TEST_CASE("openai: out-of-range values are 400 naming the field, before any job exists") {
  pe::Options o = fast_options();
  REQUIRE(pe::parse_cli({"--openai-context", "2048"}, o).error.empty());
  CHECK(o.openai_context == 2048);
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string hi = R"("messages":[{"role":"user","content":"x"}])";
  struct Bad {
    std::string body;
    std::string param;
    std::string message;
  };
  const std::vector<Bad> cases = {
      {"{" + hi + R"(,"temperature":-1})", "temperature", "\"temperature\" must be between 0 and 2; got -1"},
      {"{" + hi + R"(,"temperature":5})", "temperature", "\"temperature\" must be between 0 and 2; got 5"},
      {"{" + hi + R"(,"top_p":2})", "top_p", "\"top_p\" must be between 0 and 1; got 2"},
      {"{" + hi + R"(,"top_k":-1})", "top_k", "\"top_k\" must be between 0 and 1048576; got -1"},
      {"{" + hi + R"(,"seed":-1})", "seed", "\"seed\" must be between 0 and 9007199254740991; got -1"},
      {"{" + hi + R"(,"max_tokens":2049})", "max_tokens",
       "\"max_tokens\" must be between 1 and 2048 (the model's context holds 2048 tokens, prompt and generated "
       "together); got 2049"},
      {"{" + hi + R"(,"n":3})", "n", "\"n\" must be 1 (the only value supported); got 3"},
      {"{" + hi + R"(,"stop":["1","2","3","4","5"]})", "stop", "\"stop\" holds at most 4 strings; got 5"},
      {"{" + hi + R"(,"stop":["ok",""]})", "stop", "each stop string must have 1 to 256 bytes"},
      {R"({"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]})",
       "messages.[0].content.[0].type", "only text content parts are supported; got type \"image_url\""},
  };
  const std::string before = pj::to_string(c.get("/health").json()["jobs"]);
  for (const Bad& bad : cases) {
    CAPTURE(bad.body);
    Response r = c.post(kChatPath, bad.body, {{"Content-Type", "application/json"}});
    CHECK(r.status == 400);
    const pj::Document reply = r.json();
    CHECK(str(reply["error"], "type") == "invalid_request_error");
    CHECK(str(reply["error"], "message") == bad.message);
    CHECK(str(reply["error"], "param") == bad.param);
    CHECK(reply["error"]["code"].IsString());
    CHECK(pj::to_string(c.get("/health").json()["jobs"]) == before);  // no job exists
  }
  // A shape error has no field to name: param is null, as OpenAI sends it.
  Response r = c.post(kChatPath, "[1]");
  CHECK(r.status == 400);
  CHECK(r.json()["error"]["param"].IsNull());

  // Still serving: a good request becomes a job.
  PendingRequest request(ep.port, kChatPath, "{" + hi + R"(,"max_tokens":2048,"temperature":2,"top_p":0,"seed":0})");
  HttpClient worker(ep.port);
  pj::Document job = take(worker, "w1");
  CHECK(job["input"]["openai_input"]["max_tokens"].GetInt() == 2048);
  const std::string id = str(job, "id");
  CHECK(worker.post("/v2/local/job-done/w1/" + id, std::string(R"({"output":)") + kCompletion + "}").status == 200);
  CHECK(request.get().status == 200);
}

TEST_CASE("openai: without the model's context the endpoint bounds max_tokens by its own range only") {
  Endpoint ep;  // openai_context 0: an endpoint started apart from its workers
  HttpClient c(ep.port);
  PendingRequest request(ep.port, kChatPath, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":100000})");
  HttpClient worker(ep.port);
  pj::Document job = take(worker, "w1");  // the handler, which knows its model, decides
  CHECK(job["input"]["openai_input"]["max_tokens"].GetInt() == 100000);
  CHECK(worker.post("/v2/local/job-done/w1/" + str(job, "id"), R"({"error":"too long"})").status == 200);
  CHECK(request.get().status == 500);
  Response r = c.post(kChatPath, R"({"messages":[{"role":"user","content":"x"}],"max_tokens":2147483648})");
  CHECK(r.status == 400);
  CHECK(str(r.json()["error"], "param") == "max_tokens");
}

TEST_CASE("openai: auth and the openai rate-limit class apply") {
  pe::Options o = fast_options();
  o.api_key = "k3y";
  o.rate_limit = true;
  o.rate_window = 60s;
  o.limits.openai = {2, 0};
  Endpoint ep(o);
  HttpClient c(ep.port);
  Response r = c.post(kChatPath, kRequest);
  CHECK(r.status == 401);
  CHECK(error_type(r) == "authentication_error");
  CHECK(c.get("/openai/v1/models").status == 401);
  CHECK(c.get("/openai/v1/models", {{"Authorization", "Bearer k3y"}}).status == 200);
  CHECK(c.get("/openai/v1/models", {{"Authorization", "k3y"}}).status == 200);
  r = c.get("/openai/v1/models", {{"Authorization", "Bearer k3y"}});
  CHECK(r.status == 429);
  CHECK(error_type(r) == "rate_limit_error");
}

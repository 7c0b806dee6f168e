// Hostile JSON over real HTTP: bodies nested 100,000 levels deep (in every member the endpoint
// reads) and text that is not UTF-8 are refused with 400 and a message saying why; the server
// keeps serving and a job already queued is untouched.
#include <doctest/doctest.h>

#include <string>
#include <utility>
#include <vector>

#include "../common/hostile_json.h"
#include "endpoint_fixture.h"
#include "http_client.h"

using podworker::test::bad_utf8_cases;
using podworker::test::Endpoint;
using podworker::test::job_id;
using podworker::test::kFormHeader;
using podworker::test::nested_json;
using podworker::test::Nesting;
using podworker::test::status_of;
using podworker::test::str;
using podworker::test::take;

namespace {

constexpr std::size_t kHostileDepth = 100'000;
constexpr Nesting kAllNestings[] = {Nesting::objects, Nesting::arrays, Nesting::mixed};
constexpr const char* kTooDeep = "nests deeper than the limit of 256 levels";
constexpr const char* kBadUtf8 = "not valid UTF-8";
constexpr const char* kQueuedInput = R"({"keep":"me é€😀","n":[1,{"m":2}]})";

std::string error_of(const Response& r) {
  return str(r.json(), "error");
}
std::string openai_error_of(const Response& r) {
  return str(r.json()["error"], "message");
}

// Parses a reply that may carry a value at the deepest depth the endpoint accepts.
pj::Document parse_deep(const Response& r) {
  return pj::parse(r.body, pj::kNoSizeLimit, pj::kMaxEnvelopedDepth);
}

// Every member of a /run body the endpoint reads, and some it does not, holding `value`.
std::vector<std::pair<std::string, std::string>> run_bodies_with(const std::string& value) {
  return {
      {"in input", R"({"input":{"x":)" + value + "}}"},
      {"as input", R"({"input":)" + value + "}"},
      {"in webhook", R"({"input":{"x":1},"webhook":)" + value + "}"},
      {"in policy", R"({"input":{"x":1},"policy":)" + value + "}"},
      {"in s3Config", R"({"input":{"x":1},"s3Config":)" + value + "}"},
      {"in an unknown member", R"({"input":{"x":1},"other":)" + value + "}"},
      {"as the body", value},
      {"inside a top-level array", "[" + value + "]"},
  };
}

// The endpoint still answers, still holds the queued job exactly as it was, and has nothing else.
void check_untouched(HttpClient& c, const std::string& queued_id, int queued) {
  pj::Document h = c.get("/v2/local/health").json();
  CHECK(h["jobs"]["inQueue"].GetInt() == queued);
  CHECK(h["jobs"]["failed"].GetInt() == 0);
  CHECK(status_of(c, queued_id) == "IN_QUEUE");
}

// Takes the queued job as a worker, checks its input and completes it.
void finish_queued(HttpClient& c, const std::string& queued_id) {
  pj::Document job = take(c, "w-check");
  REQUIRE(str(job, "id") == queued_id);
  CHECK(pj::to_string(job["input"]) == pj::to_string(pj::parse(kQueuedInput)));
  Response r = c.post("/v2/local/job-done/w-check/" + queued_id + "?gpu=x&isStream=false",
                      R"({"output":{"ok":true}})", kFormHeader);
  CHECK(r.status == 200);
  CHECK(status_of(c, queued_id) == "COMPLETED");
}

}  // namespace

TEST_CASE("hostile json: /run and /runsync refuse nesting past 256 levels in every member") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string queued =
      job_id(c.post("/v2/local/run", std::string(R"({"input":)") + kQueuedInput + "}"));
  for (Nesting kind : kAllNestings) {
    for (const auto& [where, body] : run_bodies_with(nested_json(kHostileDepth, kind))) {
      for (const char* route : {"/v2/local/run", "/v2/local/runsync", "/run"}) {
        CAPTURE(static_cast<int>(kind));
        CAPTURE(where);
        CAPTURE(route);
        Response r = c.post(route, body, {{"Content-Type", "application/json"}});
        CHECK(r.status == 400);
        CHECK(error_of(r).find(kTooDeep) != std::string::npos);
      }
    }
  }
  check_untouched(c, queued, 1);

  // The limit is exact: a body 256 levels deep is a job (its input 255), one more level is not.
  CHECK(c.post("/v2/local/run", R"({"input":)" + nested_json(256, Nesting::objects) + "}").status ==
        400);
  const std::string at_limit =
      job_id(c.post("/v2/local/run", R"({"input":)" + nested_json(255, Nesting::mixed) + "}"));
  check_untouched(c, queued, 2);
  finish_queued(c, queued);
  // The deepest accepted input reaches the worker whole.
  pj::Document job = take(c, "w1");
  CHECK(str(job, "id") == at_limit);
  CHECK(pj::to_string(job["input"]) == nested_json(255, Nesting::mixed));
}

TEST_CASE(
    "hostile json: a worker's job-done, job-stream and ping bodies nested too deep are refused") {
  Endpoint ep;
  HttpClient c(ep.port);
  const std::string running = job_id(c.post("/v2/local/run", R"({"input":{"n":1}})"));
  REQUIRE(str(take(c, "w1"), "id") == running);
  const std::string queued =
      job_id(c.post("/v2/local/run", std::string(R"({"input":)") + kQueuedInput + "}"));
  const std::string done = "/v2/local/job-done/w1/" + running + "?gpu=x&isStream=false";
  const std::string stream = "/v2/local/job-stream/w1/" + running + "?gpu=x&isStream=true";
  for (Nesting kind : kAllNestings) {
    CAPTURE(static_cast<int>(kind));
    const std::string deep = nested_json(kHostileDepth, kind);
    for (const auto& [target, body] : std::vector<std::pair<std::string, std::string>>{
             {done, R"({"output":)" + deep + "}"},
             {done, R"({"error":)" + deep + "}"},
             {done, R"({"status":"IN_PROGRESS","output":)" + deep + "}"},
             {done, deep},
             {stream, R"({"output":)" + deep + "}"},
             {stream, R"({"output":[)" + deep + "]}"}}) {
      CAPTURE(target);
      Response r = c.post(target, body, kFormHeader);
      CHECK(r.status == 400);
      // Worker posts have room for the envelope around a client's value (256 + 16 levels).
      CHECK(error_of(r).find("nests deeper than the limit of 272 levels") != std::string::npos);
    }
    // A ping's body carries nothing the endpoint reads: it is ignored, not parsed.
    CHECK(c.post("/v2/local/ping/w1?job_id=" + running, deep, kFormHeader).status == 200);
  }
  CHECK(status_of(c, running) == "IN_PROGRESS");
  CHECK(c.get("/v2/local/stream/" + running).json()["stream"].Size() == 0);
  check_untouched(c, queued, 1);

  // At the envelope's limit the result is accepted and served whole.
  const std::string chunk = nested_json(pj::kMaxEnvelopedDepth - 1, Nesting::arrays);
  CHECK(c.post(stream, R"({"output":)" + chunk + "}", kFormHeader).status == 200);
  const std::string output = nested_json(pj::kMaxEnvelopedDepth - 1, Nesting::mixed);
  CHECK(c.post(done, R"({"output":)" + output + "}", kFormHeader).status == 200);
  const pj::Document st = parse_deep(c.get("/v2/local/status/" + running));
  CHECK(str(st, "status") == "COMPLETED");
  CHECK(pj::to_string(st["output"]) == output);
  finish_queued(c, queued);
}

TEST_CASE("hostile json: the OpenAI route refuses deep bodies with an OpenAI error") {
  pe::Options o = podworker::test::fast_options();
  o.openai_model = "m";
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string queued =
      job_id(c.post("/v2/local/run", std::string(R"({"input":)") + kQueuedInput + "}"));
  for (Nesting kind : kAllNestings) {
    const std::string deep = nested_json(kHostileDepth, kind);
    for (const std::string& body :
         {R"({"messages":[{"role":"user","content":)" + deep + "}]}",
          R"({"messages":[{"role":"user","content":"hi"}],"metadata":)" + deep + "}",
          R"({"messages":)" + deep + "}",
          R"({"messages":[{"role":"user","content":"hi"}],"stop":)" + deep + "}", deep}) {
      for (const char* route :
           {"/openai/v1/chat/completions", "/v2/local/openai/v1/chat/completions"}) {
        CAPTURE(static_cast<int>(kind));
        CAPTURE(body.substr(0, 60));
        Response r = c.post(route, body, {{"Content-Type", "application/json"}});
        CHECK(r.status == 400);
        CHECK(str(r.json()["error"], "type") == "invalid_request_error");
        CHECK(openai_error_of(r).find(kTooDeep) != std::string::npos);
      }
    }
  }
  check_untouched(c, queued, 1);
  finish_queued(c, queued);
}

TEST_CASE(
    "hostile json: text that is not UTF-8 is refused wherever it appears; valid text round-trips") {
  pe::Options o = podworker::test::fast_options();
  o.openai_model = "m";
  Endpoint ep(o);
  HttpClient c(ep.port);
  const std::string running = job_id(c.post("/v2/local/run", R"({"input":{"n":1}})"));
  REQUIRE(str(take(c, "w1"), "id") == running);
  const std::string queued =
      job_id(c.post("/v2/local/run", std::string(R"({"input":)") + kQueuedInput + "}"));
  const std::string done = "/v2/local/job-done/w1/" + running + "?gpu=x&isStream=false";
  const std::string stream = "/v2/local/job-stream/w1/" + running + "?gpu=x&isStream=true";
  for (const auto& bad : bad_utf8_cases()) {
    CAPTURE(bad.what);
    const std::string s = std::string("\"") + bad.bytes + "\"";
    for (const std::string& body :
         {R"({"input":{"s":)" + s + "}}", R"({"input":{)" + s + ":1}}",
          R"({"input":{"a":[1,{"b":)" + s + "}]}}", R"({"input":{},"webhook":)" + s + "}",
          R"({"input":{},)" + s + ":1}"}) {
      CAPTURE(body);
      Response r = c.post("/v2/local/run", body);
      CHECK(r.status == 400);
      CHECK(error_of(r).find(kBadUtf8) != std::string::npos);
    }
    Response r = c.post("/openai/v1/chat/completions",
                        R"({"messages":[{"role":"user","content":)" + s + "}]}");
    CHECK(r.status == 400);
    CHECK(openai_error_of(r).find(kBadUtf8) != std::string::npos);
    for (const std::string& target : {done, stream}) {
      r = c.post(target, R"({"output":{"text":)" + s + "}}", kFormHeader);
      CHECK(r.status == 400);
      CHECK(error_of(r).find(kBadUtf8) != std::string::npos);
    }
    r = c.post(done, R"({"error":)" + s + "}", kFormHeader);
    CHECK(r.status == 400);
  }
  CHECK(status_of(c, running) == "IN_PROGRESS");
  check_untouched(c, queued, 1);
  finish_queued(c, queued);

  // Valid text of every length, raw or escaped (a surrogate pair included), is kept byte for byte.
  const std::string id =
      job_id(c.post("/v2/local/run", R"({"input":{"s":"é€😀\u00e9\ud83d\ude00","\u20ac":"€"}})"));
  pj::Document job = take(c, "w2");
  CHECK(str(job, "id") == id);
  CHECK(str(job["input"], "s") == "é€😀é😀");
  CHECK(str(job["input"], "€") == "€");
}

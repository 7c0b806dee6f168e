// A request that waits for its job (/runsync, a chat completion) while purge-queue removes that job
// from the queue: the client's doing, so a 404 naming the job, never a server error.
#include <doctest/doctest.h>

#include <string>
#include <thread>

#include "endpoint_fixture.h"
#include "http_client.h"

using podworker::test::eventually;
using podworker::test::str;

namespace {

// Posts on its own thread (the request waits for its job) and returns the response.
struct Waiting {
  Waiting(std::uint16_t port, std::string path, std::string body)
      : thread([this, port, path = std::move(path), body = std::move(body)] {
          HttpClient client(port);
          response = client.post(path, body);
        }) {}
  Response get() {
    thread.join();
    return response;
  }
  Response response;
  std::jthread thread;
};

void purge_when_queued(HttpClient& c) {
  REQUIRE(eventually([&] { return c.get("/health").json()["jobs"]["inQueue"].GetInt() == 1; }));
  CHECK(c.post("/purge-queue").json()["removed"].GetInt() == 1);
}

}  // namespace

TEST_CASE("purged while waiting: /runsync answers 404 with the job's id") {
  podworker::test::Endpoint ep;
  HttpClient c(ep.port);
  Waiting sync(ep.port, "/runsync?wait=10000", R"({"input":{}})");
  purge_when_queued(c);
  const Response r = sync.get();
  CHECK(r.status == 404);
  const std::string message = str(r.json(), "error");
  CHECK(message.find("sync-") != std::string::npos);
  CHECK(message.find("purged") != std::string::npos);
}

TEST_CASE("purged while waiting: a chat completion answers 404 not_found_error naming the job") {
  podworker::test::Endpoint ep;
  HttpClient c(ep.port);
  Waiting chat(ep.port, "/openai/v1/chat/completions",
               R"({"messages":[{"role":"user","content":"hi"}]})");
  purge_when_queued(c);
  const Response r = chat.get();
  CHECK(r.status == 404);
  const pj::Document doc = r.json();
  const pj::Value& error = doc["error"];
  CHECK(str(error, "type") == "not_found_error");
  CHECK(str(error, "job_id").starts_with("sync-"));
  CHECK(str(error, "message").find("purged") != std::string::npos);
}

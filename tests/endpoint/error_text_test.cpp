// Error bodies quote what the client sent (job ids, paths, endpoint ids, model names); they must
// stay valid UTF-8 JSON whatever bytes that was: bytes that are not UTF-8 are quoted as %XX.
#include <doctest/doctest.h>

#include <string>

#include "endpoint_fixture.h"
#include "http_client.h"

using podworker::test::Endpoint;
using podworker::test::str;

TEST_CASE("error messages are UTF-8 even when the request's bytes are not") {
  Endpoint ep;
  HttpClient c(ep.port);

  Response r = c.get("/status/ab\xff");
  CHECK(r.status == 404);
  CHECK(str(r.json(), "error") == "job ab%FF not found");

  r = c.get("/v2/\xc3\x28/health");  // an invalid two-byte sequence
  CHECK(r.status == 404);
  CHECK(str(r.json(), "error") == "unknown endpoint id '%C3('");

  r = c.get("/nothing\xed\xa0\x80");  // an encoded surrogate is not UTF-8 either
  CHECK(r.status == 404);
  CHECK(str(r.json(), "error") == "no such route: /nothing%ED%A0%80");

  // The model id is percent-decoded before it is compared: the decoded bytes are what is quoted.
  r = c.get("/openai/v1/models/%FF%FEx");
  CHECK(r.status == 404);
  CHECK(str(r.json()["error"], "message").starts_with("the model '%FF%FEx' does not exist"));
  // Valid UTF-8 is quoted as it is.
  r = c.get("/openai/v1/models/mod%C3%A8le-\xe2\x82\xac");
  CHECK(r.status == 404);
  CHECK(str(r.json()["error"], "message")
            .starts_with("the model 'mod\xc3\xa8le-\xe2\x82\xac' does not"));
}

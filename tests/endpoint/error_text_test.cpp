// Error bodies quote what the client sent (job ids, paths, endpoint ids, model names); they must
// stay valid UTF-8 JSON whatever bytes that was: bytes that are not UTF-8 are quoted as %XX.
#include <doctest/doctest.h>

#include <string>

#include "endpoint_fixture.h"
#include "http_client.h"
#include "message_text.h"

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

TEST_CASE("utf8_for_message: valid UTF-8 kept, every other byte quoted") {
  using podworker::endpoint::utf8_for_message;
  CHECK(utf8_for_message("plain id-1") == "plain id-1");
  CHECK(utf8_for_message("\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xa8") ==
        "\xf0\x9f\x98\x80 \xe2\x82\xac \xc3\xa8");
  CHECK(utf8_for_message("\xc0\x80") == "%C0%80");                // overlong NUL
  CHECK(utf8_for_message("\xe0\x80\xaf") == "%E0%80%AF");         // overlong '/'
  CHECK(utf8_for_message("\xf4\x90\x80\x80") == "%F4%90%80%80");  // past U+10FFFF
  CHECK(utf8_for_message("\xf5\x80") == "%F5%80");
  CHECK(utf8_for_message("ab\xe2\x82") == "ab%E2%82");  // cut short at the end
  CHECK(utf8_for_message("\xe2\x82x") == "%E2%82x");    // cut short by an ASCII byte
  CHECK(utf8_for_message(std::string("a\0b", 3)) == std::string("a\0b", 3));  // JSON escapes it
}

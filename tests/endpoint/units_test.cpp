// The endpoint's pure parts: routing, query strings, auth, webhook URLs, rate limiting, flags.
#include <doctest/doctest.h>

#include "auth.h"
#include "podworker/endpoint/server.h"
#include "rate_limit.h"
#include "routes.h"
#include "webhook.h"

namespace pe = podworker::endpoint;

TEST_CASE("routes: prefixed and unprefixed, arguments, query") {
  auto r = pe::parse_route("/v2/my-ep/job-done/worker-1/job-9?gpu=x&isStream=false");
  REQUIRE(r);
  CHECK(r->endpoint == "my-ep");
  CHECK(r->op == pe::Op::job_done);
  CHECK(r->arg1 == "worker-1");
  CHECK(r->arg2 == "job-9");
  CHECK(pe::query_param(r->query, "isStream") == "false");
  CHECK_FALSE(pe::query_param(r->query, "missing"));

  r = pe::parse_route("/status/abc");
  REQUIRE(r);
  CHECK(r->endpoint.empty());
  CHECK(r->op == pe::Op::status);
  CHECK(r->arg1 == "abc");
  CHECK(pe::parse_route("/v2/ep/health/")->op == pe::Op::health);
  CHECK(pe::parse_route("/v2/ep/purge-queue")->op == pe::Op::purge_queue);

  CHECK_FALSE(pe::parse_route("/v2/ep/status"));
  CHECK_FALSE(pe::parse_route("/v2/ep/job-done/w"));
  CHECK_FALSE(pe::parse_route("/v2/ep/run/extra"));
  CHECK_FALSE(pe::parse_route("/v2"));
  CHECK_FALSE(pe::parse_route("v2/ep/run"));
  CHECK_FALSE(pe::parse_route("/v3/ep/run"));

  CHECK(pe::method_allowed(pe::Op::status, pe::Method::get));
  CHECK(pe::method_allowed(pe::Op::status, pe::Method::post));
  CHECK_FALSE(pe::method_allowed(pe::Op::run, pe::Method::get));
  CHECK(pe::allowed_methods(pe::Op::stream) == "GET, POST");
  CHECK(pe::query_param("job_id=a%2Cb&x", "job_id") == "a,b");
  CHECK(pe::query_param("job_id=a%2Cb&x", "x") == "");
}

TEST_CASE("auth: Bearer or bare key, nothing else") {
  CHECK(pe::authorized("Bearer k1", "k1"));
  CHECK(pe::authorized("bearer k1", "k1"));
  CHECK(pe::authorized("k1", "k1"));
  CHECK_FALSE(pe::authorized("", "k1"));
  CHECK_FALSE(pe::authorized("Bearer", "k1"));
  CHECK_FALSE(pe::authorized("k", "k1"));
  CHECK_FALSE(pe::authorized("k12", "k1"));
  CHECK_FALSE(pe::authorized("Basic k1", "k1"));
}

TEST_CASE("webhook URLs: http and https with a host, no user info") {
  CHECK(pe::webhook_url_supported("http://127.0.0.1:9000/hook?a=1"));
  CHECK(pe::webhook_url_supported("http://example.test"));
  CHECK(pe::webhook_url_supported("https://example.test/"));
  CHECK(pe::webhook_url_supported("https://[::1]:81/x"));
  CHECK_FALSE(pe::webhook_url_supported("https://"));
  CHECK_FALSE(pe::webhook_url_supported("http:///path"));
  CHECK_FALSE(pe::webhook_url_supported("https://user:pw@example.test/"));
  CHECK_FALSE(pe::webhook_url_supported("ftp://x"));
  CHECK_FALSE(pe::webhook_url_supported("file:///etc/passwd"));
  CHECK_FALSE(pe::webhook_url_supported("HTTPS-ish"));
}

TEST_CASE("rate limiter: requests per window and concurrency") {
  pe::RateLimiter counted(pe::RateLimit{2, 0}, std::chrono::hours(1));
  pe::RateLimiter::Permit p1, p2, p3;
  CHECK(counted.try_acquire(p1));
  CHECK(counted.try_acquire(p2));
  CHECK_FALSE(counted.try_acquire(p3));

  pe::RateLimiter concurrent(pe::RateLimit{0, 1}, std::chrono::hours(1));
  {
    pe::RateLimiter::Permit held;
    CHECK(concurrent.try_acquire(held));
    pe::RateLimiter::Permit second;
    CHECK_FALSE(concurrent.try_acquire(second));
  }
  pe::RateLimiter::Permit after;
  CHECK(concurrent.try_acquire(after));  // released with `held`
}

TEST_CASE("command line") {
  pe::Options o;
  auto r = pe::parse_cli({"--port", "0", "--endpoint-id=a", "--endpoint-id", "b", "--api-key", "k", "--no-rate-limit",
                          "--rate-limit", "run=5/2", "--take-wait-ms", "250", "--retry-limit=4"},
                         o);
  CHECK(r.error.empty());
  CHECK(o.port == 0);
  CHECK(o.endpoint_ids == std::vector<std::string>{"a", "b"});
  CHECK(o.api_key == "k");
  CHECK_FALSE(o.rate_limit);
  CHECK(o.limits.run.requests == 5);
  CHECK(o.limits.run.concurrent == 2);
  CHECK(o.take_wait == std::chrono::milliseconds(250));
  CHECK(o.retry_limit == 4);
  CHECK_FALSE(pe::parse_cli({"--port", "70000"}, o).error.empty());
  CHECK_FALSE(pe::parse_cli({"--bogus"}, o).error.empty());
  CHECK_FALSE(pe::parse_cli({"--rate-limit", "nope=1/1"}, o).error.empty());
  CHECK_FALSE(pe::parse_cli({"--port"}, o).error.empty());
  CHECK(pe::parse_cli({"--help"}, o).help);
  CHECK(pe::cli_help("endpoint").find("--take-wait-ms") != std::string::npos);
  CHECK(pe::cli_help("endpoint").find("PODWORKER_API_KEY") != std::string::npos);

  CHECK(o.openai_model == "podworker");
  CHECK(o.limits.openai.requests == 2000);
  CHECK(o.limits.openai.concurrent == 400);
  CHECK(pe::parse_cli({"--openai-model", "smollm2", "--rate-limit", "openai=7/3"}, o).error.empty());
  CHECK(o.openai_model == "smollm2");
  CHECK(o.limits.openai.requests == 7);
  CHECK(o.limits.openai.concurrent == 3);
  CHECK_FALSE(pe::parse_cli({"--openai-model="}, o).error.empty());

  CHECK(o.webhook_ca_file.empty());
  CHECK(pe::parse_cli({"--webhook-ca-file", "/etc/ssl/private-ca.pem"}, o).error.empty());
  CHECK(o.webhook_ca_file == "/etc/ssl/private-ca.pem");
  CHECK_FALSE(pe::parse_cli({"--webhook-ca-file="}, o).error.empty());
  CHECK(pe::cli_help("endpoint").find("--webhook-ca-file") != std::string::npos);
}

TEST_CASE("routes: the OpenAI-compatible paths") {
  auto r = pe::parse_route("/openai/v1/chat/completions");
  REQUIRE(r);
  CHECK(r->op == pe::Op::openai_chat);
  CHECK(r->endpoint.empty());
  r = pe::parse_route("/v2/my-ep/openai/v1/models/");
  REQUIRE(r);
  CHECK(r->op == pe::Op::openai_models);
  CHECK(r->endpoint == "my-ep");
  CHECK(pe::method_allowed(pe::Op::openai_chat, pe::Method::post));
  CHECK_FALSE(pe::method_allowed(pe::Op::openai_chat, pe::Method::get));
  CHECK(pe::method_allowed(pe::Op::openai_models, pe::Method::get));
  r = pe::parse_route("/v2/my-ep/openai/v1/models/org/model%20x?x=1");
  REQUIRE(r);
  CHECK(r->op == pe::Op::openai_model);
  CHECK(r->arg1 == "org/model%20x");  // the whole rest of the path: ids may hold '/'
  CHECK(pe::decode_path(r->arg1) == "org/model x");
  CHECK(pe::decode_path("a+b%2B") == "a+b+");  // '+' is a space only in query strings
  CHECK(pe::method_allowed(pe::Op::openai_model, pe::Method::get));
  CHECK_FALSE(pe::method_allowed(pe::Op::openai_model, pe::Method::post));
  CHECK_FALSE(pe::parse_route("/openai/v1/completions/extra"));
  // The legacy completions route runs as a job like chat; arg1 tells the two apart.
  r = pe::parse_route("/v2/my-ep/openai/v1/completions");
  REQUIRE(r);
  CHECK(r->op == pe::Op::openai_chat);
  CHECK(r->arg1 == "v1/completions");
  CHECK(pe::parse_route("/openai/v1/chat/completions")->arg1 == "v1/chat/completions");
  CHECK_FALSE(pe::parse_route("/openai"));
  CHECK_FALSE(pe::parse_route("/openai/v2/chat/completions"));
}

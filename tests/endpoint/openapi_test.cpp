// GET /openapi.json over real HTTP: the served document is the repository's openapi.json byte for
// byte, is JSON, is served without the API key, and names exactly routes the router serves.
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>
#include <set>
#include <string>

#include "endpoint_fixture.h"
#include "http_client.h"
#include "routes.h"

using podworker::test::Endpoint;
using podworker::test::fast_options;
using podworker::test::str;

namespace {

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// A concrete target for a templated path: every {parameter} gets a plain value.
std::string concrete(std::string path) {
  for (auto [name, value] :
       {std::pair{"{endpoint_id}", "local"}, {"{job_id}", "job-1"}, {"{model}", "podworker"}}) {
    for (auto at = path.find(name); at != std::string::npos; at = path.find(name))
      path.replace(at, std::string(name).size(), value);
  }
  return path;
}

}  // namespace

TEST_CASE("openapi: GET /openapi.json serves the repository's document, without the key") {
  pe::Options o = fast_options();
  o.api_key = "secret";
  Endpoint ep(o);
  HttpClient c(ep.port);

  Response r = c.get("/openapi.json");
  REQUIRE(r.status == 200);
  CHECK(r.content_type == "application/json");
  CHECK(r.body == read_file(PODWORKER_OPENAPI_FILE));
  const pj::Document doc = r.json();
  REQUIRE(doc.IsObject());
  CHECK(str(doc, "openapi").starts_with("3."));
  CHECK(doc["paths"].IsObject());
  CHECK(c.get("/v2/local/openapi.json").body == r.body);

  // Only the description is public; everything else still wants the key, and methods are checked.
  CHECK(c.get("/health").status == 401);
  CHECK(c.post("/openapi.json").status == 405);
}

TEST_CASE("openapi: every path and method in the document is a route the router serves") {
  const pj::Document doc = pj::parse(read_file(PODWORKER_OPENAPI_FILE));
  std::set<std::string> paths;
  for (const auto& [name, item] : doc["paths"].GetObject()) {
    const std::string path(name.GetString(), name.GetStringLength());
    paths.insert(path);
    CAPTURE(path);
    const std::string target = concrete(path);  // the route's views point into it
    const auto route = pe::parse_route(target);
    REQUIRE(route.has_value());
    CHECK(route->endpoint == (path.starts_with("/v2/") ? "local" : ""));
    for (const auto& [method, op] : item.GetObject()) {
      const std::string m(method.GetString(), method.GetStringLength());
      CAPTURE(m);
      REQUIRE((m == "get" || m == "post"));
      CHECK(pe::method_allowed(route->op, m == "get" ? pe::Method::get : pe::Method::post));
      CHECK(op["responses"].HasMember("200"));
    }
    // Each method the router takes on the route is described.
    CHECK(item.HasMember("get") == pe::method_allowed(route->op, pe::Method::get));
    CHECK(item.HasMember("post") == pe::method_allowed(route->op, pe::Method::post));
  }
  // The client API and the OpenAI routes, each with and without the /v2/{endpoint_id} prefix.
  for (const char* path :
       {"/run", "/runsync", "/status/{job_id}", "/stream/{job_id}", "/cancel/{job_id}",
        "/retry/{job_id}", "/purge-queue", "/health", "/recent-jobs", "/openai/v1/chat/completions",
        "/openai/v1/completions", "/openai/v1/models", "/openai/v1/models/{model}"}) {
    CAPTURE(path);
    CHECK(paths.contains(path));
    CHECK(paths.contains(std::string("/v2/{endpoint_id}") + path));
  }
  // Process-wide: one document whatever the prefix, described once.
  CHECK(paths.contains("/openapi.json"));
  CHECK(paths.contains("/metrics"));
}

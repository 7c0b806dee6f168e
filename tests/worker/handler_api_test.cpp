// Handler API v2 without a server: settings from each source and their precedence, the default
// handler, the context init() gets, typed input messages, and what a local --test-input accepts.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "child_process.h"
#include "podworker/handler.h"
#include "podworker/worker.h"
#include "test_support.h"

namespace podworker::test {
namespace {

std::vector<Setting> declared() {
  return {
      {.name = "model",
       .default_value = "tiny.gguf",
       .help = "the model",
       .env_aliases = {"TESTAPI_OLD_MODEL"}},
      {.name = "max_batch",
       .type = SettingType::integer,
       .default_value = "4",
       .help = "batch",
       .min = 1,
       .max = 64},
      {.name = "scale", .type = SettingType::number, .default_value = "0.5", .help = "scale"},
      {.name = "verbose", .type = SettingType::boolean, .default_value = "false", .help = "chatty"},
  };
}

// A variable set for the test's scope only.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    ::setenv(name_.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() { ::unsetenv(name_.c_str()); }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
};

std::filesystem::path write_temp(const std::string& name, const std::string& text) {
  const auto path =
      std::filesystem::temp_directory_path() / (name + "-" + std::to_string(::getpid()) + ".json");
  std::ofstream(path) << text;
  return path;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "(no error)";
}

// Runs `fn` with stdout and stderr going to files; returns {stdout, stderr}.
std::pair<std::string, std::string> capture(const std::function<void()>& fn) {
  std::fflush(stdout);
  std::fflush(stderr);
  const auto out_path = write_temp("capture-out", "");
  const auto err_path = write_temp("capture-err", "");
  const int saved_out = ::dup(1), saved_err = ::dup(2);
  const int out_fd = ::open(out_path.c_str(), O_WRONLY | O_TRUNC);
  const int err_fd = ::open(err_path.c_str(), O_WRONLY | O_TRUNC);
  ::dup2(out_fd, 1);
  ::dup2(err_fd, 2);
  fn();
  std::fflush(stdout);
  std::fflush(stderr);
  ::dup2(saved_out, 1);
  ::dup2(saved_err, 2);
  for (int fd : {saved_out, saved_err, out_fd, err_fd}) ::close(fd);
  const auto slurp = [](const std::filesystem::path& p) {
    std::ifstream in(p);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::filesystem::remove(p);
    return text;
  };
  return {slurp(out_path), slurp(err_path)};
}

int run_main(const std::vector<std::string>& args, const WorkerMainOptions& options) {
  std::vector<std::string> argv_s{"worker"};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  return worker_main(static_cast<int>(argv.size()), argv.data(), options);
}

// Records the context it was initialized with.
struct ConfiguredHandler final : Handler {
  static inline HandlerContext seen;
  std::vector<Setting> settings() const override { return declared(); }
  void init(const HandlerContext& context) override { seen = context; }
  Output execute(Job& job, Emitter&) override {
    json::Document d(rapidjson::kObjectType);
    auto& a = d.GetAllocator();
    d.AddMember("model", json::string_value(seen.settings.get_string("model"), a), a);
    d.AddMember("max_batch", seen.settings.get_int("max_batch"), a);
    d.AddMember("job", json::string_value(job.id(), a), a);
    return Output::ok(std::move(d));
  }
};

}  // namespace

TEST_CASE("settings: defaults, then the config file, then the variable, then --set") {
  const auto file = write_temp(
      "settings", R"({"model": "from-file.gguf", "max_batch": 8, "scale": 2, "verbose": true})");
  SUBCASE("defaults") {
    const Settings s = resolve_settings("mine", declared(), {}, "");
    CHECK(s.get_string("model") == "tiny.gguf");
    CHECK(s.get_int("max_batch") == 4);
    CHECK(s.get_number("scale") == 0.5);
    CHECK_FALSE(s.get_bool("verbose"));
    CHECK(s.source("model") == "default");
  }
  SUBCASE("the file over the defaults") {
    const Settings s = resolve_settings("mine", declared(), {}, file.string());
    CHECK(s.get_string("model") == "from-file.gguf");
    CHECK(s.get_int("max_batch") == 8);
    CHECK(s.get_number("scale") == 2.0);
    CHECK(s.get_bool("verbose"));
    CHECK(s.source("max_batch") == "file " + file.string());
  }
  SUBCASE("an alias over the file, the canonical variable over the alias") {
    ScopedEnv alias("TESTAPI_OLD_MODEL", "from-alias.gguf");
    CHECK(resolve_settings("mine", declared(), {}, file.string()).get_string("model") ==
          "from-alias.gguf");
    ScopedEnv canonical("PODWORKER_MINE_MODEL", "from-env.gguf");
    ScopedEnv batch("PODWORKER_MINE_MAX_BATCH", "16");
    const Settings s = resolve_settings("mine", declared(), {}, file.string());
    CHECK(s.get_string("model") == "from-env.gguf");
    CHECK(s.source("model") == "PODWORKER_MINE_MODEL");
    CHECK(s.get_int("max_batch") == 16);
    // --set wins over everything; the last of two wins.
    const Settings f = resolve_settings("mine", declared(),
                                        {{"model", "a.gguf"}, {"model", "b.gguf"}}, file.string());
    CHECK(f.get_string("model") == "b.gguf");
    CHECK(f.source("model") == "--set");
    CHECK(f.get_int("max_batch") == 16);
  }
  std::filesystem::remove(file);
}

TEST_CASE("settings: a bad value, an unknown name or a bad file is a clear error") {
  CHECK(error_of([] {
          resolve_settings("mine", declared(), {{"max_batch", "lots"}}, "");
        }) == "setting mine.max_batch (from --set) must be an integer in [1, 64], got \"lots\"");
  CHECK(error_of([] {
          resolve_settings("mine", declared(), {{"max_batch", "65"}}, "");
        }) == "setting mine.max_batch (from --set) must be an integer in [1, 64], got \"65\"");
  {
    ScopedEnv bad("PODWORKER_MINE_VERBOSE", "maybe");
    CHECK(error_of([] { resolve_settings("mine", declared(), {}, ""); }) ==
          "setting mine.verbose (from PODWORKER_MINE_VERBOSE) must be true or false (also 1/0, "
          "yes/no, on/off), got "
          "\"maybe\"");
  }
  CHECK(error_of([] {
          resolve_settings("mine", declared(), {{"modle", "x"}}, "");
        }) ==
        "--set modle: handler mine has no setting \"modle\" (its settings: model, max_batch, "
        "scale, verbose)");
  const auto typo = write_temp("settings-typo", R"({"max_btach": 2})");
  CHECK(error_of([&] { resolve_settings("mine", declared(), {}, typo.string()); }) ==
        "config file " + typo.string() +
            ": handler mine has no setting \"max_btach\" (its settings: model, max_batch, scale, "
            "verbose)");
  const auto wrong = write_temp("settings-type", R"({"max_batch": "eight"})");
  CHECK(error_of([&] { resolve_settings("mine", declared(), {}, wrong.string()); }) ==
        "setting mine.max_batch (from file " + wrong.string() +
            ") must be an integer in [1, 64], got \"eight\"");
  CHECK(error_of([] { resolve_settings("mine", declared(), {}, "/nonexistent/settings.json"); }) ==
        "config file /nonexistent/settings.json cannot be read");
  std::filesystem::remove(typo);
  std::filesystem::remove(wrong);
  CHECK(setting_env_name("text-gen", "max_sequences") == "PODWORKER_TEXT_GEN_MAX_SEQUENCES");
}

TEST_CASE("worker_main: settings reach init(); a bad one stops the worker at start with exit 2") {
  HandlerRegistry registry;
  registry.add<ConfiguredHandler>("mine");
  ScopedEnv batch("PODWORKER_MINE_MAX_BATCH", "9");
  int rc = -1;
  auto [out, err] = capture([&] {
    rc = run_main({"--set", "model=flag.gguf", "--test-input", R"({"input": {}})"},
                  {.registry = &registry});
  });
  CHECK(rc == 0);
  // The only registered handler is the default; the context carries its name, id, settings.
  CHECK(out.find(R"({"output":{"model":"flag.gguf","max_batch":9,"job":"local_test"}})") !=
        std::string::npos);
  CHECK(ConfiguredHandler::seen.handler_name == "mine");
  CHECK_FALSE(ConfiguredHandler::seen.worker_id.empty());
  CHECK(ConfiguredHandler::seen.settings.source("max_batch") == "PODWORKER_MINE_MAX_BATCH");

  auto [out2, err2] = capture([&] {
    rc = run_main({"--set", "max_batch=0", "--test-input", R"({"input": {}})"},
                  {.registry = &registry});
  });
  CHECK(rc == 2);
  CHECK(err2 ==
        "worker: setting mine.max_batch (from --set) must be an integer in [1, 64], got \"0\"\n");
  CHECK(out2.empty());

  // --help lists each handler's settings with their variables.
  auto [help, help_err] = capture([&] { rc = run_main({"--help"}, {.registry = &registry}); });
  CHECK(rc == 0);
  CHECK(help.find(
            "    max_batch (integer, default \"4\"; PODWORKER_MINE_MAX_BATCH)\n        batch\n") !=
        std::string::npos);
  CHECK(
      help.find("model (string, default \"tiny.gguf\"; PODWORKER_MINE_MODEL, TESTAPI_OLD_MODEL)") !=
      std::string::npos);
  CHECK(help.find("PODWORKER_LONG_POLL_TIMEOUT_MS") != std::string::npos);
}

TEST_CASE(
    "select_handler: requested, else the default, else the only one; otherwise say what exists") {
  HandlerRegistry one;
  one.add("mine", plain_handler([](Job&) { return Output::ok("x"); }));
  CHECK(select_handler("", "", one) == "mine");
  CHECK(select_handler("mine", "", one) == "mine");
  HandlerRegistry two = one;
  two.add("other", plain_handler([](Job&) { return Output::ok("y"); }));
  CHECK(select_handler("", "other", two) == "other");
  CHECK(select_handler("mine", "other", two) == "mine");
  CHECK(error_of([&] { select_handler("", "", two); }) ==
        "no handler chosen and 2 are registered (mine, other): pass --handler NAME or "
        "PODWORKER_HANDLER, or name a "
        "default in worker_main");
  CHECK(error_of([&] { select_handler("echo", "", two); }) ==
        "unknown handler \"echo\"; registered: mine, other");
  CHECK(error_of([&] { select_handler("", "gone", two); }) ==
        "the default handler \"gone\" is not registered; registered: mine, other");

  // A custom binary's default is what runs when nothing names a handler.
  int rc = -1;
  auto [out, err] = capture([&] {
    rc = run_main({"--test-input", R"({"input": {}})"},
                  {.default_handler = "other", .registry = &two});
  });
  CHECK(rc == 0);
  CHECK(out == "{\"output\":\"y\"}\n");
}

TEST_CASE("the worker program runs echo when no handler is named") {
  ::unsetenv("PODWORKER_HANDLER");
  ChildProcess child(PODWORKER_WORKER_BINARY, {"--test-input", R"({"input": {"hello": 1}})"}, {});
  const auto line = child.read_line_with(R"("output")", std::chrono::seconds(20));
  REQUIRE(line.has_value());
  CHECK(*line == R"({"output":{"hello":1}})");
  CHECK(child.wait() == 0);
}

TEST_CASE("typed input: each reader's message names the field") {
  const auto doc =
      json::parse(R"({"n": 0, "x": "s", "f": 2.5, "b": 1, "o": {"k": true}, "z": null})");
  const InputReader in(doc);
  const auto message = [](const std::function<void()>& fn) {
    try {
      fn();
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  CHECK(message([&] { (void)in.integer("n", 3, 1); }) == "input.n must be an integer \u2265 1");
  CHECK(message([&] { (void)in.integer("n", 3, 1, 10); }) ==
        "input.n must be an integer in [1, 10]");
  CHECK(message([&] { (void)in.integer("x", 3, InputReader::kNoMin, 5); }) ==
        "input.x must be an integer \u2264 5");
  CHECK(message([&] { (void)in.required_integer("missing"); }) ==
        "input.missing is required (an integer)");
  CHECK(message([&] { (void)in.number("f", 0, 0, 1); }) == "input.f must be a number in [0, 1]");
  CHECK(message([&] { (void)in.boolean("b", false); }) == "input.b must be true or false");
  CHECK(message([&] { (void)in.string("n", ""); }) == "input.n must be a string");
  CHECK(message([&] { (void)in.object("o").string("k", ""); }) == "input.o.k must be a string");
  CHECK(message([&] { const InputReader nested(doc["x"]); }) == "input must be a JSON object");
  // Present and valid, absent, or null: the value, else the fallback.
  CHECK(in.integer("missing", 7, 1) == 7);
  CHECK(in.integer("z", 7, 1) == 7);
  CHECK(in.number("f", 0) == 2.5);
  CHECK(in.string("x", "") == "s");
  CHECK(in.object("o").boolean("k", false));
}

TEST_CASE("local run: input must be an object, as the endpoint requires") {
  auto handler = test_registry().create("echo");
  for (const char* job : {R"({"input": 5})", R"({"input": "text"})", R"({"input": [1]})"}) {
    CAPTURE(job);
    const auto result = run_local_job(*handler, json::parse(job), WorkerOptions{});
    CHECK_FALSE(result.ok);
    CHECK(json::to_string(result.body) == R"({"error":"\"input\" must be a JSON object"})");
  }
  const auto ok = run_local_job(*handler, json::parse(R"({"input": {"a": 1}})"), WorkerOptions{});
  CHECK(ok.ok);
  CHECK(json::to_string(ok.body) == R"({"output":{"a":1}})");
}

TEST_CASE("error report: the traceback starts where the handler threw, names demangled and whole") {
  auto handler = test_registry().create("throws_deep");
  const auto result = run_local_job(*handler, json::parse(R"({"input": {}})"), WorkerOptions{});
  REQUIRE_FALSE(result.ok);
  const auto report = json::parse(result.body["error"].GetString());
  CHECK(std::string(report["error_type"].GetString()) == "std::runtime_error");
  CHECK(std::string(report["error_message"].GetString()) == "no widget in the input");
  const std::string traceback = report["error_traceback"].GetString();
  MESSAGE(traceback);
  CHECK(traceback.rfind("Traceback (where the exception was thrown, innermost first):\n", 0) == 0);
  // The innermost frame is the handler's function, demangled with its namespace and arguments.
  const auto first = traceback.find("  #0 ");
  REQUIRE(first != std::string::npos);
  const std::string frame0 = traceback.substr(first, traceback.find('\n', first) - first);
  CHECK(frame0.find("podworker::test::parse_the_widget(") != std::string::npos);
  if (PODWORKER_HAVE_LIBBACKTRACE) CHECK(frame0.find("test_support.h:") != std::string::npos);
  // The runtime frames that caught it are further out, and nothing is cut short.
  CHECK(traceback.find("run_job") > first);
  CHECK(traceback.find("...") == std::string::npos);
}

TEST_CASE("error report: an exception thrown on another thread falls back to the catch site") {
  auto handler = plain_handler([](Job&) -> Output {
    std::exception_ptr elsewhere;
    std::jthread([&] {
      try {
        throw std::logic_error("from a helper thread");
      } catch (...) {
        elsewhere = std::current_exception();
      }
    }).join();
    std::rethrow_exception(elsewhere);
  })();
  const auto result = run_local_job(*handler, json::parse(R"({"input": {}})"), WorkerOptions{});
  const auto report = json::parse(result.body["error"].GetString());
  CHECK(std::string(report["error_message"].GetString()) == "from a helper thread");
  CHECK(std::string(report["error_traceback"].GetString())
            .rfind("Traceback (where the exception was caught, innermost first; the throw site was "
                   "not recorded):",
                   0) == 0);
}

TEST_CASE("local run: a stream prints its summary as /runsync would, its chunks without one") {
  auto summarizing = test_registry().create("maybe_streams");
  const auto summary =
      run_local_job(*summarizing, json::parse(R"({"input": {"yield": true}})"), WorkerOptions{});
  CHECK(json::to_string(summary.body) == R"({"output":{"summary":"two letters"}})");
  WorkerOptions aggregate;
  aggregate.return_aggregate_stream = true;
  const auto chunks =
      run_local_job(*summarizing, json::parse(R"({"input": {"yield": true}})"), aggregate);
  CHECK(json::to_string(chunks.body) == R"({"output":["a","b"]})");
  auto plain_stream = test_registry().create("stream_echo");
  const auto echoed = run_local_job(
      *plain_stream,
      json::parse(R"({"input": {"text": "abcd", "chunk_size": 2, "progress": false}})"),
      WorkerOptions{});
  CHECK(json::to_string(echoed.body) == R"({"output":["ab","cd"]})");
}

}  // namespace podworker::test

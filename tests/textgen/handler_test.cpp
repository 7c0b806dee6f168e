// The textgen handler driven through the handler API with a small in-test Job and Emitter.
#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stop_token>
#include <thread>
#include <vector>

#include "podworker/handlers/textgen.h"
#include "podworker/utf8.h"
#include "podworker/worker.h"
#include "test_model_fixture.h"
#include "textgen_handler.h"

using namespace podworker;

namespace {

class TestJob final : public Job {
 public:
  explicit TestJob(const std::string& input_json) : raw_(json::parse_object("{\"id\":\"job-1\",\"input\":" + input_json + "}")) {}
  const std::string& id() const override { return id_; }
  const json::Value& input() const override { return raw_["input"]; }
  const json::Value& raw() const override { return raw_; }
  std::stop_token stop_token() const override { return stop_.get_token(); }
  void progress(const json::Value&) override {}
  void request_refresh() override {}
  std::stop_source stop_;

 private:
  std::string id_ = "job-1";
  json::Document raw_;
};

class TestEmitter final : public Emitter {
 public:
  void yield(const json::Value& chunk) override {
    std::lock_guard lock(mutex_);
    // Checked on the value itself: to_string would repair invalid text and hide it.
    if (const json::Value* text = json::find(chunk, "text"); text != nullptr && text->IsString()) {
      if (!utf8_valid({text->GetString(), text->GetStringLength()})) ++invalid_text;
    }
    chunks.push_back(json::to_string(chunk));
    if (on_chunk) on_chunk();
  }
  std::mutex mutex_;
  std::vector<std::string> chunks;
  int invalid_text = 0;  // yielded "text" values that were not valid UTF-8
  std::function<void()> on_chunk;
};

std::shared_ptr<llm::Generator> small_generator() {
  static std::shared_ptr<llm::Generator> g = [] {
    auto spec = testing::small_spec();
    spec.context = 96;
    llm::BackendOptions o;
    o.threads = 2;
    o.max_sequences = 4;
    return std::shared_ptr<llm::Generator>(
        llm::Generator::load(testing::generated_model_path(spec, "handler"), llm::BackendKind::cpu, o));
  }();
  return g;
}

json::Document last_chunk(const TestEmitter& e) {
  REQUIRE(!e.chunks.empty());
  return json::parse(e.chunks.back());
}

}  // namespace

TEST_CASE("textgen streams text deltas and ends with a summary chunk") {
  handlers::textgen::TextgenHandler h(small_generator());
  h.init({});
  TestJob job(R"({"prompt": "hello there", "max_tokens": 9, "temperature": 0})");
  TestEmitter out;
  const Output result = h.execute(job, out);
  CHECK(!result.is_error());
  const json::Document last = last_chunk(out);
  CHECK(last["done"].GetBool());
  CHECK(last["output_tokens"].GetInt() <= 9);
  CHECK(last["input_tokens"].GetInt() > 0);
  CHECK(last.HasMember("time_to_first_token_ms"));
  CHECK(last.HasMember("tokens_per_second"));
  std::string joined;
  for (std::size_t i = 0; i + 1 < out.chunks.size(); ++i) joined += json::parse(out.chunks[i])["text"].GetString();
  CHECK(joined == last["full_text"].GetString());
  const std::string reason = last["finish_reason"].GetString();
  CHECK((reason == "length" || reason == "stop"));
}

TEST_CASE("textgen: characters split over byte tokens are yielded only whole") {
  // The test vocabulary holds the 256 byte tokens and random weights pick them often, so sampled
  // text is full of multi-byte characters split over tokens, and of stray bytes.
  handlers::textgen::TextgenHandler h(small_generator());
  h.init({});
  int non_ascii = 0;
  for (int seed = 1; seed <= 6; ++seed) {
    CAPTURE(seed);
    TestJob job(R"({"prompt": "caf\u00e9 \u20ac", "max_tokens": 40, "temperature": 1.5, "seed": )" +
                std::to_string(seed) + "}");
    TestEmitter out;
    REQUIRE(!h.execute(job, out).is_error());
    CHECK(out.invalid_text == 0);
    const json::Document last = last_chunk(out);
    std::string joined;
    for (std::size_t i = 0; i + 1 < out.chunks.size(); ++i)
      joined += json::parse(out.chunks[i])["text"].GetString();
    CHECK(joined == last["full_text"].GetString());
    CHECK(utf8_valid(joined));
    for (unsigned char c : joined) non_ascii += c >= 0x80;
  }
  CHECK(non_ascii > 0);  // the case above really met bytes past ASCII
}

TEST_CASE("textgen: same seed, same text; messages use the chat template") {
  handlers::textgen::TextgenHandler h(small_generator());
  const char* input = R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "temperature": 0.9, "seed": 3})";
  TestJob a(input), b(input);
  TestEmitter ea, eb;
  CHECK(!h.execute(a, ea).is_error());
  CHECK(!h.execute(b, eb).is_error());
  CHECK(std::string(last_chunk(ea)["full_text"].GetString()) == last_chunk(eb)["full_text"].GetString());
}

TEST_CASE("textgen: concurrent jobs share the engine") {
  handlers::textgen::TextgenHandler h(small_generator());
  std::vector<std::string> texts(4);
  {
    std::vector<std::jthread> threads;
    for (int i = 0; i < 4; ++i) {
      threads.emplace_back([&, i] {
        TestJob job(R"({"prompt": "abc", "max_tokens": 10, "temperature": 0})");
        TestEmitter out;
        CHECK(!h.execute(job, out).is_error());
        texts[static_cast<std::size_t>(i)] = last_chunk(out)["full_text"].GetString();
      });
    }
  }
  for (const auto& t : texts) CHECK(t == texts[0]);  // greedy: identical prompts, identical texts
}

TEST_CASE("textgen: cancellation stops the job at the next token") {
  handlers::textgen::TextgenHandler h(small_generator());
  TestJob job(R"({"prompt": "abc", "max_tokens": 60, "temperature": 0.8, "top_k": 0, "top_p": 1.0, "seed": 1})");
  TestEmitter out;
  out.on_chunk = [&] { job.stop_.request_stop(); };
  const Output r = h.execute(job, out);
  CHECK(!r.is_error());
  CHECK(out.chunks.size() == 1);  // the chunk that triggered the stop, then nothing
}

TEST_CASE("textgen: bad input is a clear job error") {
  handlers::textgen::TextgenHandler h(small_generator());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({})", "exactly one of"},
      {R"({"prompt": 5})", "\"prompt\" must be a string"},
      {R"({"prompt": "x", "max_tokens": 0})", "max_tokens"},
      {R"({"prompt": "x", "max_tokens": 100000})", "max_tokens"},
      {R"({"prompt": "x", "temperature": "hot"})", "temperature"},
      {R"({"prompt": "x", "stop": [1]})", "stop"},
      {R"({"messages": []})", "messages"},
      {R"({"messages": [{"role": "user", "content": 3}]})", "content"},
      {R"({"openai_route": "/v1/embeddings", "openai_input": {}})", "openai_route"},
      {R"({"openai_route": "/v1/chat/completions", "openai_input": {"messages": [{"role": "user", "content": "x"}], "stream": true, "stream_options": "yes"}})",
       "\"stream_options\" must be an object"},
      {R"({"openai_route": "/v1/chat/completions", "openai_input": {"messages": [{"role": "user", "content": "x"}], "stream": true, "stream_options": {"include_usage": "yes"}}})",
       "\"stream_options.include_usage\" must be a boolean"},
      {R"("just a string")", "object"},
  };
  for (const auto& [input, needle] : cases) {
    TestJob job(input.front() == '{' ? input : R"({"x":1})");
    if (input.front() != '{') continue;
    TestEmitter out;
    const Output r = h.execute(job, out);
    INFO(input);
    CHECK(r.is_error());
    CHECK(r.error_message().find(needle) != std::string::npos);
    CHECK(out.chunks.empty());
  }
  // A prompt longer than the context (96 tokens).
  std::string long_prompt(2000, 'a');
  for (std::size_t i = 0; i < long_prompt.size(); i += 2) long_prompt[i] = ' ';
  TestJob job(R"({"prompt": ")" + long_prompt + R"("})");
  TestEmitter out;
  const Output r = h.execute(job, out);
  CHECK(r.is_error());
  CHECK(r.error_message().find("context") != std::string::npos);
}

TEST_CASE("textgen: OpenAI route, plain and streamed") {
  handlers::textgen::TextgenHandler h(small_generator());
  TestJob plain(R"({"openai_route": "/v1/chat/completions", "openai_input": {"model": "m", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 0}})");
  TestEmitter out;
  CHECK(!h.execute(plain, out).is_error());
  REQUIRE(out.chunks.size() == 1);
  const json::Document c = json::parse(out.chunks[0]);
  CHECK(std::string(c["object"].GetString()) == "chat.completion");
  CHECK(std::string(c["model"].GetString()) == "m");
  CHECK(std::string(c["choices"][0]["message"]["role"].GetString()) == "assistant");
  CHECK(c["usage"]["completion_tokens"].GetInt() <= 5);

  TestJob streamed(R"({"openai_route": "/v1/chat/completions", "openai_input": {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 0, "stream": true}})");
  TestEmitter sse;
  CHECK(!h.execute(streamed, sse).is_error());
  REQUIRE(sse.chunks.size() >= 3);
  CHECK(json::parse(sse.chunks.back()).GetString() == std::string("data: [DONE]\n\n"));
  const std::string first = json::parse(sse.chunks.front()).GetString();
  CHECK(first.rfind("data: {", 0) == 0);
  CHECK(first.find("\"chat.completion.chunk\"") != std::string::npos);
  CHECK(first.find("\"role\":\"assistant\"") != std::string::npos);
}

TEST_CASE("textgen: OpenAI stream_options.include_usage ends the stream with a usage chunk") {
  handlers::textgen::TextgenHandler h(small_generator());
  const std::string body = R"("messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "temperature": 0)";
  TestJob plain(R"({"openai_route": "/v1/chat/completions", "openai_input": {)" + body + "}}");
  TestEmitter whole;
  CHECK(!h.execute(plain, whole).is_error());
  REQUIRE(whole.chunks.size() == 1);
  const json::Document completion = json::parse(whole.chunks[0]);

  TestJob streamed(R"({"openai_route": "/v1/chat/completions", "openai_input": {"stream": true, )"
                   R"("stream_options": {"include_usage": true}, )" + body + "}}");
  TestEmitter sse;
  CHECK(!h.execute(streamed, sse).is_error());
  REQUIRE(sse.chunks.size() >= 4);  // role/content..., finish, usage, [DONE]
  CHECK(json::parse(sse.chunks.back()).GetString() == std::string("data: [DONE]\n\n"));
  std::vector<json::Document> events;
  for (std::size_t i = 0; i + 1 < sse.chunks.size(); ++i) {
    const std::string text = json::parse(sse.chunks[i]).GetString();
    REQUIRE(text.rfind("data: ", 0) == 0);
    REQUIRE(text.ends_with("\n\n"));
    events.push_back(json::parse(text.substr(6, text.size() - 8)));
  }
  // Every chunk but the last carries "usage": null and one choice; the last has no choices and the
  // usage the non-stream completion reports.
  for (std::size_t i = 0; i + 1 < events.size(); ++i) {
    REQUIRE(events[i].HasMember("usage"));
    CHECK(events[i]["usage"].IsNull());
    CHECK(events[i]["choices"].Size() == 1);
  }
  const json::Document& last = events.back();
  CHECK(std::string(last["object"].GetString()) == "chat.completion.chunk");
  CHECK(std::string(last["id"].GetString()) == events.front()["id"].GetString());
  CHECK(last["choices"].IsArray());
  CHECK(last["choices"].Empty());
  const json::Value& usage = last["usage"];
  CHECK(usage["prompt_tokens"].GetInt() == completion["usage"]["prompt_tokens"].GetInt());
  CHECK(usage["completion_tokens"].GetInt() == completion["usage"]["completion_tokens"].GetInt());
  CHECK(usage["total_tokens"].GetInt() == usage["prompt_tokens"].GetInt() + usage["completion_tokens"].GetInt());
  CHECK(std::string(events[events.size() - 2]["choices"][0]["finish_reason"].GetString()) ==
        completion["choices"][0]["finish_reason"].GetString());

  // Without the option (or with it false) no chunk carries a usage field.
  TestJob off(R"({"openai_route": "/v1/chat/completions", "openai_input": {"stream": true, )"
              R"("stream_options": {"include_usage": false}, )" + body + "}}");
  TestEmitter no_usage;
  CHECK(!h.execute(off, no_usage).is_error());
  REQUIRE(no_usage.chunks.size() >= 3);
  for (std::size_t i = 0; i + 1 < no_usage.chunks.size(); ++i) {
    const std::string text = json::parse(no_usage.chunks[i]).GetString();
    REQUIRE(text.size() > 8);
    const json::Document event = json::parse(text.substr(6, text.size() - 8));
    CHECK_FALSE(event.HasMember("usage"));
    CHECK(event["choices"].Size() == 1);
  }
}

TEST_CASE("real model: greedy generation gives the pinned text") {
  const std::string found = testing::real_model_path();
  if (found.empty()) {
    MESSAGE("skipped: models/SmolLM2-135M-Instruct.Q4_1.gguf is absent (scripts/fetch-model.sh "
            "downloads it)");
    return;
  }
  llm::BackendOptions o;
  o.threads = 2;
  o.max_sequences = 1;
  o.max_context = 256;
  auto g = llm::Generator::load(found, llm::BackendKind::cpu, o);
  const std::vector<model::Tokenizer::Message> msgs = {{"user", "What is the capital of France?"}};
  llm::TextRequest r;
  r.prompt = g->tokenizer().encode(model::Tokenizer::apply_chat_template(msgs));
  r.max_tokens = 24;
  const llm::TextResult res = g->generate_text(r, {});
  MESSAGE("generated: " << res.text);
  CHECK(res.text == "The capital of France is Paris.");
}

TEST_CASE("textgen: merged stream chunks read exactly as the chunks one by one") {
  handlers::textgen::TextgenHandler h(small_generator());
  h.init({});
  TestJob job(R"({"prompt": "hello there", "max_tokens": 12, "temperature": 0})");
  TestEmitter out;
  REQUIRE(!h.execute(job, out).is_error());
  REQUIRE(out.chunks.size() >= 3);
  json::Document chunks(rapidjson::kArrayType);
  for (const auto& c : out.chunks) chunks.PushBack(json::clone(json::parse(c), chunks.GetAllocator()), chunks.GetAllocator());
  std::vector<const json::Value*> refs;
  for (const auto& c : chunks.GetArray()) refs.push_back(&c);
  const json::Value& last = *refs.back();

  // Deltas then the summary: one chunk, as a client concatenating "text" and reading the latest
  // counts would have seen them.
  json::Document all;
  CHECK(h.merge_chunks(refs, all) == refs.size());
  CHECK(std::string(all["text"].GetString()) == last["full_text"].GetString());
  CHECK(all["output_tokens"] == last["output_tokens"]);
  CHECK(all["done"].GetBool());
  CHECK(all["finish_reason"] == last["finish_reason"]);

  // Deltas alone: their text concatenated, the latest count.
  json::Document deltas;
  const std::span<const json::Value* const> head(refs.data(), refs.size() - 1);
  CHECK(h.merge_chunks(head, deltas) == head.size());
  std::string joined;
  for (const auto* c : head) joined += (*c)["text"].GetString();
  CHECK(std::string(deltas["text"].GetString()) == joined);
  CHECK(deltas["output_tokens"] == (*head.back())["output_tokens"]);
  CHECK(deltas.MemberCount() == 2);

  // Nothing follows the summary; an object of another shape merges with nothing.
  json::Document none;
  const json::Value* summary_first[] = {&last, refs.front()};
  CHECK(h.merge_chunks(summary_first, none) == 0);
  const json::Document other = json::parse(R"({"choices":[]})");
  const json::Value* other_first[] = {&other, refs.front()};
  CHECK(h.merge_chunks(other_first, none) == 0);
}

namespace {

// An Emitter whose first yield blocks until release(), as the worker's stream sender does when a
// job's network stalls and its buffer is full. The wait gives up after two minutes, so an engine
// that stalled on it fails the test instead of hanging it.
class StalledEmitter final : public Emitter {
 public:
  void yield(const json::Value&) override {
    std::unique_lock lock(mutex_);
    if (yields_++ != 0) return;
    blocked_ = true;
    changed_.notify_all();
    released_by_call_ = changed_.wait_for(lock, std::chrono::seconds(120), [&] { return open_; });
  }
  void wait_blocked() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return blocked_; });
  }
  void release() {
    {
      std::lock_guard lock(mutex_);
      open_ = true;
    }
    changed_.notify_all();
  }
  bool released_by_call() {
    std::lock_guard lock(mutex_);
    return released_by_call_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool blocked_ = false, open_ = false, released_by_call_ = false;
  int yields_ = 0;
};

}  // namespace

TEST_CASE("textgen: a job whose stream is stalled does not stall the other sequences") {
  handlers::textgen::TextgenHandler h(small_generator());
  StalledEmitter stalled_out;
  std::jthread stalled([&] {
    TestJob job(R"({"prompt": "abc", "max_tokens": 40, "temperature": 0})");
    CHECK(!h.execute(job, stalled_out).is_error());
  });
  stalled_out.wait_blocked();
  // Runs to the end while the stalled job's consumer is blocked: the engine pauses only that
  // sequence (its token queue fills), never the batch.
  TestJob job(R"({"prompt": "xyz", "max_tokens": 40, "temperature": 0})");
  TestEmitter out;
  CHECK(!h.execute(job, out).is_error());
  CHECK(last_chunk(out)["done"].GetBool());
  stalled_out.release();
  stalled.join();
  CHECK(stalled_out.released_by_call());  // not by the two-minute guard
}

TEST_CASE(
    "textgen: settings load the model; max_sequences is the capacity the worker runs by default") {
  auto spec = testing::small_spec();
  spec.context = 96;
  const std::string path = testing::generated_model_path(spec, "handler");
  WorkerOptions o;
  o.handler = "textgen";
  o.setting_flags = {{"model", path}, {"max_sequences", "3"}, {"backend", "cpu"}, {"threads", "2"}};
  handlers::textgen::TextgenHandler h;
  CHECK(h.capacity() == 1);  // nothing loaded yet
  h.init(make_handler_context(o, h));
  CHECK(h.capacity() == 3);
  TestJob job(R"({"prompt": "hello", "max_tokens": 3, "temperature": 0})");
  TestEmitter out;
  CHECK(!h.execute(job, out).is_error());
  CHECK(json::parse(out.chunks.back())["done"].GetBool());
  h.finalize();

  // The variables of earlier releases still configure it, below the setting's own variable.
  ::setenv("PODWORKER_MAX_SEQUENCES", "5", 1);
  const auto declared = h.settings();
  Settings s = resolve_settings("textgen", declared, {}, "");
  CHECK(s.get_int("max_sequences") == 5);
  CHECK(s.source("max_sequences") == "PODWORKER_MAX_SEQUENCES");
  ::setenv("PODWORKER_TEXTGEN_MAX_SEQUENCES", "6", 1);
  CHECK(resolve_settings("textgen", declared, {}, "").get_int("max_sequences") == 6);
  ::unsetenv("PODWORKER_TEXTGEN_MAX_SEQUENCES");
  ::setenv("PODWORKER_MAX_SEQUENCES", "0", 1);
  try {
    resolve_settings("textgen", declared, {}, "");
    FAIL("0 sequences accepted");
  } catch (const std::invalid_argument& e) {
    CHECK(std::string(e.what()) ==
          "setting textgen.max_sequences (from PODWORKER_MAX_SEQUENCES) must be an integer in [1, "
          "1024], got \"0\"");
  }
  ::unsetenv("PODWORKER_MAX_SEQUENCES");
}

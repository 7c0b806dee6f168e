// The stream and progress senders over real HTTP through a delaying proxy: order and completeness
// at several round-trip times, merging while a post is in flight, the 1 MB limit on merged posts,
// backpressure by bytes, cancel, a failing stream endpoint, and latest-wins progress. The server
// holds chosen posts open (Gates) to make each interleaving certain: no timing assertions.
#include <doctest/doctest.h>

#include <atomic>

#include "podworker/json.h"
#include "podworker/utf8.h"
#include "stream_fixture.h"

namespace podworker::test {
namespace {

using namespace std::chrono_literals;

// Yields input.count chunks, then opens `yielded`. input.kind: "string" (chunk i is "<i>," plus
// input.pad copies of "é€"), "object" ({"seq": [i]}) or "forever" (the string "x" until
// cancelled). With `merge`, runs of {"seq": [...]} objects merge by concatenating their seq.
class SequenceHandler final : public Handler {
 public:
  explicit SequenceHandler(bool merge = false) : merge_(merge) {}
  bool streams() const override { return true; }

  std::size_t merge_chunks(std::span<const json::Value* const> chunks,
                           json::Document& merged) const override {
    if (!merge_) return 0;
    merged.SetObject();
    json::Value seq(rapidjson::kArrayType);
    std::size_t n = 0;
    for (; n < chunks.size() && chunks[n]->IsObject() && chunks[n]->HasMember("seq"); ++n) {
      for (const auto& v : (*chunks[n])["seq"].GetArray())
        seq.PushBack(json::clone(v, merged.GetAllocator()), merged.GetAllocator());
    }
    merged.AddMember("seq", seq, merged.GetAllocator());
    return n;
  }

  Output execute(Job& job, Emitter& out) override {
    const std::string kind = json::get_string(job.input(), "kind");
    const int count = static_cast<int>(json::get_int(job.input(), "count", 0));
    const int pad = static_cast<int>(json::get_int(job.input(), "pad", 0));
    if (kind == "forever") {
      while (!job.cancelled()) {
        out.yield("x");
        ++yields;
      }
      return {};
    }
    for (int i = 0; i < count; ++i) {
      if (i == 1 && first_posted != nullptr) first_posted->wait(job.stop_token());
      if (kind == "string") {
        out.yield(string_chunk(i, pad));
      } else {
        json::Document d(rapidjson::kObjectType);
        json::Value seq(rapidjson::kArrayType);
        seq.PushBack(i, d.GetAllocator());
        d.AddMember("seq", seq, d.GetAllocator());
        out.yield(d);
      }
      ++yields;
    }
    yielded.open();
    return {};
  }

  static std::string string_chunk(int i, int pad) {
    std::string s = std::to_string(i) + ",";
    for (int k = 0; k < pad; ++k) s += "é€";
    return s;
  }

  std::atomic<int> yields{0};
  Gate yielded;
  Gate* first_posted = nullptr;  // when set, waited for after the first yield

 private:
  bool merge_;
};

std::string job_json(const std::string& id, const std::string& kind, int count, int pad = 0) {
  return R"({"id":")" + id + R"(","input":{"kind":")" + kind + R"(","count":)" +
         std::to_string(count) + R"(,"pad":)" + std::to_string(pad) + "}}";
}

json::Document parse(const std::string& body) {
  return json::parse(body, json::kNoSizeLimit);
}

// The stream posts' outputs, each post checked against the 1 MB limit.
std::vector<json::Document> stream_outputs(const StreamFixture& f) {
  std::vector<json::Document> out;
  for (const auto& r : f.requests(StreamFixture::is_stream)) {
    CHECK(r.body.size() <= 1024u * 1024);
    auto body = parse(r.body);
    REQUIRE(body.HasMember("output"));
    json::Document output;
    output.CopyFrom(body["output"], output.GetAllocator());
    out.push_back(std::move(output));
  }
  return out;
}

std::vector<int> seq_of(const std::vector<json::Document>& outputs) {
  std::vector<int> seq;
  for (const auto& o : outputs) {
    REQUIRE(o.IsObject());
    for (const auto& v : o["seq"].GetArray()) seq.push_back(v.GetInt());
  }
  return seq;
}

std::vector<int> iota(int n) {
  std::vector<int> v(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) v[static_cast<std::size_t>(i)] = i;
  return v;
}

}  // namespace

void strings_arrive_whole(std::chrono::milliseconds rtt) {
  StreamFixture f(rtt);
  f.queue_job(job_json("s", "string", 1500, 400));  // 1500 chunks of ~2 KB: 3 MB in all
  SequenceHandler h;
  WorkerThread w(f.options(), h);
  REQUIRE(f.wait_result());
  w.stop();
  std::string joined;
  for (const auto& o : stream_outputs(f)) {
    REQUIRE(o.IsString());
    const std::string_view piece(o.GetString(), o.GetStringLength());
    CHECK(utf8_valid(piece));  // split on code points only
    joined += piece;
  }
  std::string expected;
  for (int i = 0; i < 1500; ++i) expected += SequenceHandler::string_chunk(i, 400);
  CHECK(joined == expected);
  CHECK(f.requests(StreamFixture::is_result)[0].body == R"({"output":[]})");
}

void objects_merge_by_rule(std::chrono::milliseconds rtt) {
  StreamFixture f(rtt);
  f.queue_job(job_json("o", "object", 3000));
  SequenceHandler h(true);
  WorkerThread w(f.options(), h);
  REQUIRE(f.wait_result());
  w.stop();
  CHECK(seq_of(stream_outputs(f)) == iota(3000));
}

void objects_without_rule_one_per_post(std::chrono::milliseconds rtt) {
  StreamFixture f(rtt);
  f.queue_job(job_json("n", "object", 12));
  SequenceHandler h;
  auto o = f.options();
  o.return_aggregate_stream = true;
  WorkerThread w(o, h);
  REQUIRE(f.wait_result());
  w.stop();
  const auto outputs = stream_outputs(f);
  CHECK(outputs.size() == 12);
  CHECK(seq_of(outputs) == iota(12));
  // The aggregated result is the list of chunks as yielded, whatever the posts merged.
  const auto result = parse(f.requests(StreamFixture::is_result)[0].body);
  REQUIRE(result["output"].IsArray());
  CHECK(result["output"].Size() == 12);
  CHECK(json::to_string(result["output"][11]) == R"({"seq":[11]})");
}

TEST_CASE(
    "stream: chunks arrive complete and in order, merged posts within 1 MB, at 0, 20 and 100 ms "
    "RTT") {
  for (const auto rtt : {0ms, 20ms, 100ms}) {
    CAPTURE(rtt.count());
    strings_arrive_whole(rtt);
    objects_merge_by_rule(rtt);
    objects_without_rule_one_per_post(rtt);
  }
}

TEST_CASE(
    "stream: yield does not wait for the network; what is yielded meanwhile goes in the next "
    "post") {
  StreamFixture f;
  SequenceHandler merging(true);
  SequenceHandler plain;
  SequenceHandler* h = &merging;
  std::string kind = "object";
  SUBCASE("strings") {
    kind = "string";
    h = &plain;
  }
  SUBCASE("objects with a rule") {}
  // The first post (chunk 0 alone: the handler waits for it to reach the server) is held until
  // the handler has yielded everything else: the handler never waited for the network.
  Gate first_posted;
  h->first_posted = &first_posted;
  std::atomic<int> posts{0};
  f.on_stream = [&](const RecordedRequest&, std::stop_token stop) {
    if (posts++ == 0) {
      first_posted.open();
      h->yielded.wait(stop);
    }
    return Reply{200, ""};
  };
  f.queue_job(job_json("m", kind, 200));
  WorkerThread w(f.options(), *h);
  REQUIRE(f.wait_result());
  w.stop();
  const auto outputs = stream_outputs(f);
  REQUIRE(outputs.size() == 2);
  if (kind == "string") {
    std::string rest;
    for (int i = 1; i < 200; ++i) rest += SequenceHandler::string_chunk(i, 0);
    CHECK(std::string(outputs[0].GetString()) == "0,");
    CHECK(std::string(outputs[1].GetString()) == rest);
  } else {
    CHECK(json::to_string(outputs[0]) == R"({"seq":[0]})");
    CHECK(seq_of(outputs) == iota(200));
  }
}

TEST_CASE(
    "stream: a handler far ahead of a stalled network waits once the buffer's bytes are full") {
  StreamFixture f;
  SequenceHandler h;
  // Chunks "0," to "9," cost their post body, {"output":"<i>,"}: 15 bytes each. With 100 bytes of
  // buffer the first 6 chunks fit (in flight or waiting), the 7th must wait.
  std::atomic<int> posts{0};
  std::atomic<int> yields_while_held{-1};
  f.on_stream = [&](const RecordedRequest&, std::stop_token stop) {
    if (posts++ == 0) {
      // Wait for the handler to fill the buffer; it can go no further while this post is held.
      while (h.yields.load() < 6 && !stop.stop_requested()) std::this_thread::yield();
      yields_while_held = h.yields.load();
    }
    return Reply{200, ""};
  };
  auto o = f.options();
  o.stream_buffer_bytes = 100;
  f.queue_job(job_json("b", "string", 50));
  WorkerThread w(o, h);
  REQUIRE(f.wait_result());
  w.stop();
  CHECK(yields_while_held.load() == 6);
  std::string joined;
  for (const auto& out : stream_outputs(f)) joined += out.GetString();
  std::string expected;
  for (int i = 0; i < 50; ++i) expected += SequenceHandler::string_chunk(i, 0);
  CHECK(joined == expected);
}

TEST_CASE("stream: after a cancel mid-stream nothing more is posted, not even a result") {
  StreamFixture f;
  SequenceHandler h;
  std::atomic<int> posts{0};
  Gate fourth_arrived, released;
  f.on_stream = [&](const RecordedRequest&, std::stop_token stop) {
    if (++posts == 4) {
      fourth_arrived.open();
      released.wait(stop);  // in flight when the cancel comes
    }
    return Reply{200, ""};
  };
  f.queue_job(R"({"id":"c","input":{"kind":"forever"}})");
  WorkerThread w(f.options(), h);
  REQUIRE(fourth_arrived.wait());
  f.queue_stop("c");
  // The job ends while its fourth post is still unanswered: the stop interrupted it.
  while (!w.worker().held_jobs().empty()) std::this_thread::yield();
  released.open();
  w.stop();
  CHECK(f.requests(StreamFixture::is_stream).size() == 4);
  CHECK(f.requests(StreamFixture::is_result).empty());
  CHECK(h.yields.load() > 0);
}

TEST_CASE("stream: a stream endpoint that refuses the posts fails the job, saying why") {
  StreamFixture f;
  f.on_stream = [](const RecordedRequest&, std::stop_token) {
    return Reply{400, R"({"error":"no such job"})"};
  };
  SequenceHandler h;
  f.queue_job(job_json("f", "string", 5000));
  WorkerThread w(f.options(), h);
  REQUIRE(f.wait_result());
  w.stop();
  const auto result = parse(f.requests(StreamFixture::is_result)[0].body);
  REQUIRE(result["error"].IsString());
  const std::string error = result["error"].GetString();
  CHECK(error.find("stream chunk could not be delivered: HTTP 400") != std::string::npos);
  CHECK(f.requests(StreamFixture::is_stream).size() == 1);  // no post after the failure
}

namespace {

// Posts progress {"step": i} for i in 0..count-1 as fast as it can, then waits for `seen_last`.
class ProgressHandler final : public Handler {
 public:
  Output execute(Job& job, Emitter&) override {
    const int count = static_cast<int>(json::get_int(job.input(), "count", 0));
    for (int i = 0; i < count; ++i) {
      json::Document d(rapidjson::kObjectType);
      d.AddMember("step", i, d.GetAllocator());
      job.progress(d);
      if (i == 0) first_posted.wait(job.stop_token());  // step 0 is in flight before the rest
    }
    issued.open();
    if (json::get_bool(job.input(), "wait", true)) seen_last.wait(job.stop_token());
    return Output::ok("done");
  }
  Gate first_posted, issued, seen_last;
};

}  // namespace

TEST_CASE("progress: returns at once; while one is in flight only the newest is sent next") {
  StreamFixture f;
  ProgressHandler h;
  std::atomic<int> posts{0};
  f.on_progress = [&](const RecordedRequest& r, std::stop_token stop) {
    if (posts++ == 0) {
      h.first_posted.open();
      h.issued.wait(stop);  // the other 999 updates are made while this one is held
    }
    if (r.body.find(R"("step":999)") != std::string::npos) h.seen_last.open();
    return Reply{200, ""};
  };
  f.queue_job(R"({"id":"p","input":{"count":1000}})");
  WorkerThread w(f.options(), h);
  REQUIRE(f.wait_result());
  w.stop();
  const auto progress = f.requests(StreamFixture::is_progress);
  REQUIRE(progress.size() == 2);
  CHECK(progress[0].body == R"({"status":"IN_PROGRESS","output":{"step":0}})");
  CHECK(progress[1].body == R"({"status":"IN_PROGRESS","output":{"step":999}})");
  CHECK(f.requests(StreamFixture::is_result)[0].body == R"({"output":"done"})");
}

TEST_CASE("progress: no update lands after the result; one not yet sent is dropped") {
  StreamFixture f;
  ProgressHandler h;
  std::atomic<bool> progress_answered{false};
  std::atomic<bool> result_after_progress{false};
  std::atomic<int> posts{0};
  f.on_progress = [&](const RecordedRequest&, std::stop_token stop) {
    if (posts++ == 0) {
      h.first_posted.open();
      h.issued.wait(stop);
    }
    progress_answered = true;
    return Reply{200, ""};
  };
  f.on_result = [&](const RecordedRequest&, std::stop_token) {
    result_after_progress = progress_answered.load();
    return Reply{200, ""};
  };
  f.queue_job(R"({"id":"q","input":{"count":50,"wait":false}})");
  WorkerThread w(f.options(), h);
  REQUIRE(f.wait_result());
  w.stop();
  CHECK(result_after_progress.load());
  // The first update was in flight when the job ended; the newest, waiting, was superseded.
  CHECK(f.requests(StreamFixture::is_progress).size() == 1);
}

}  // namespace podworker::test

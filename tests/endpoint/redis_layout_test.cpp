// The Redis store's own keys, read with plain commands: how ended jobs are indexed for their
// retention, and what becomes of jobs a replica of the previous version ended (it indexed them in
// `ended` and `ended:<STATUS>`), which a rolling upgrade leaves behind.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>

#include "fake_clock.h"
#include "redis_connection.h"
#include "redis_store.h"
#include "redis_test_server.h"

namespace pe = podworker::endpoint;
using namespace std::chrono_literals;
using podworker::test::FakeClock;
using podworker::test::RedisTestServer;

namespace {

struct Fixture {
  Fixture() {
    pe::StoreOptions o;
    o.retention = 10s;
    o.runsync_retention = 2s;
    o.clock = clock;
    store = std::make_unique<pe::RedisStore>(redis.address(), "layout", o, nullptr);
  }
  std::string text(const std::vector<std::string_view>& args) {
    const pe::RedisReply r = raw.command(args);
    return std::string(pe::reply_text(*r));
  }
  long long integer(const std::vector<std::string_view>& args) {
    const pe::RedisReply r = raw.command(args);
    REQUIRE(r->type == REDIS_REPLY_INTEGER);
    return r->integer;
  }
  std::string key(const std::string& rest) const { return store->key_prefix() + rest; }

  RedisTestServer redis;
  std::shared_ptr<FakeClock> clock = std::make_shared<FakeClock>();
  std::unique_ptr<pe::RedisStore> store;
  pe::RedisConnection raw{redis.address(), 5s};
};

void run_one(pe::RedisStore& store, const std::string& id, bool fail) {
  pe::NewJob job;
  job.id = id;
  job.input_json = "{}";
  REQUIRE(store.submit(std::move(job)).accepted);
  store.worker_begin("w1");
  REQUIRE(store.take("w1", 1).size() == 1);
  pe::WorkerResult r;
  if (fail) {
    r.kind = pe::WorkerResult::Kind::error;
    r.error = "boom";
  } else {
    r.output_json = "1";
  }
  REQUIRE(store.post_result("w1", id, std::move(r)) == pe::PostOutcome::accepted);
}

}  // namespace

TEST_CASE("redis layout: an ended job is indexed by its state and removal deadline only") {
  Fixture f;
  run_one(*f.store, "ok", false);
  run_one(*f.store, "bad", true);
  // One sorted set per terminal state, scored by the removal deadline: a sweep takes what is due
  // in a few commands, health counts with ZCOUNT.
  CHECK(f.integer({"ZCARD", f.key("done:COMPLETED")}) == 1);
  CHECK(f.integer({"ZCARD", f.key("done:FAILED")}) == 1);
  CHECK(f.text({"ZSCORE", f.key("done:COMPLETED"), "ok"}) ==
        f.text({"HGET", f.key("job:ok"), "exp"}));
  // A completed job has no deadline left but its retention; a failed one keeps its TTL entry,
  // from which /retry restores it.
  CHECK(f.integer({"ZCARD", f.key("ttl")}) == 1);
  CHECK(f.integer({"EXISTS", f.key("ended"), f.key("ended:COMPLETED"), f.key("ended:FAILED")}) ==
        0);
  CHECK(f.store->retry("bad") == pe::RetryOutcome::requeued);
  CHECK(f.integer({"ZCARD", f.key("done:FAILED")}) == 0);

  f.clock->advance(10s + 1ms);
  f.store->sweep();
  CHECK(f.integer({"EXISTS", f.key("job:ok"), f.key("done:COMPLETED")}) == 0);
  CHECK(f.store->status("bad"));  // requeued: not ended, not removed
}

TEST_CASE(
    "redis layout: jobs ended by the previous version are counted, then removed at their time") {
  Fixture f;
  run_one(*f.store, "old", false);
  // Rewritten as the previous version left an ended job: in `ended` by its deadline and in
  // `ended:COMPLETED`, not in `done:COMPLETED`.
  const std::string exp = f.text({"HGET", f.key("job:old"), "exp"});
  f.raw.command({"ZREM", f.key("done:COMPLETED"), "old"});
  f.raw.command({"ZADD", f.key("ended"), exp, "old"});
  f.raw.command({"SADD", f.key("ended:COMPLETED"), "old"});
  f.raw.command({"ZADD", f.key("ttl"), exp, "old"});
  CHECK(f.store->health().completed == 1);

  f.clock->advance(9s);
  f.store->sweep();
  CHECK(f.store->status("old"));
  f.clock->advance(1s + 1ms);
  f.store->sweep();
  CHECK_FALSE(f.store->status("old"));
  CHECK(f.store->health().completed == 0);
  CHECK(f.integer({"EXISTS", f.key("job:old"), f.key("ended"), f.key("ended:COMPLETED"),
                   f.key("ttl")}) == 0);
}

TEST_CASE("redis layout: left-overs of a mixed-version endpoint are cleaned up, never a live job") {
  Fixture f;
  // A job the previous version indexed as ended whose hash Redis has already expired: its index
  // entries go at its deadline, and health stops counting it.
  run_one(*f.store, "kept", false);
  const std::string deadline = f.text({"HGET", f.key("job:kept"), "exp"});
  f.raw.command({"ZADD", f.key("ended"), deadline, "gone"});
  f.raw.command({"SADD", f.key("ended:COMPLETED"), "gone"});
  CHECK(f.store->health().completed == 2);

  // A failed job that a replica of the previous version requeued (its /retry does not know the
  // `done:` index): past the failed run's deadline it must stay, queued.
  run_one(*f.store, "again", true);
  f.raw.command({"HSET", f.key("job:again"), "st", "IN_QUEUE"});
  f.raw.command({"RPUSH", f.key("queue"), "again"});

  f.clock->advance(10s + 1ms);
  f.store->sweep();
  CHECK(f.store->health().completed == 0);
  CHECK(f.integer({"EXISTS", f.key("ended"), f.key("ended:COMPLETED"), f.key("done:FAILED")}) == 0);
  CHECK_FALSE(f.store->status("kept"));
  const auto again = f.store->status("again");
  REQUIRE(again);
  CHECK(again->status == pe::JobStatus::in_queue);
  CHECK(f.store->health().in_queue == 1);
  CHECK_FALSE(f.text({"ZSCORE", f.key("ttl"), "again"}).empty());  // its TTL still runs
}

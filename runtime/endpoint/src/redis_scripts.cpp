#include "redis_scripts.h"

#include <array>
#include <cstdint>
#include <cstdio>
#include <string>

namespace podworker::endpoint::redis_script {

namespace {

// Helpers every script shares. Keys are built from the prefix "pw:{endpoint}:": the braces are a
// Redis Cluster hash tag, so all keys of one endpoint live in one slot, as multi-key scripts need.
// Job hashes and chunk lists also get a key expiry a little past their TTL or retention deadline:
// the sweep (which also stops workers and counts) acts first, the expiry frees memory should no
// endpoint be running to sweep.
constexpr std::string_view kPrelude = R"LUA(
-- The common arguments of the call being run, set by begin() at the start of every function (the
-- library is loaded once; these are its per-call state, safe because Redis runs one call at a time).
-- NOW_S is NOW as the caller sent it. Redis 7.0 turns a Lua number given to redis.call() into text
-- with printf("%.17g"), which for a time in ms costs more than the command it is for: the hot paths
-- pass text (NOW_S, '0', '1') wherever a value is only stored.
local P, ORIGIN, NOW, NOW_S, RETENTION, RUNSYNC_RETENTION, GRACE, RETRY_LIMIT
local SLACK = 60000
local notes, events, logs, ended, queue_changed, queue_length
local function begin(ARGV)
  P, ORIGIN, NOW, NOW_S = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[3]
  RETENTION, RUNSYNC_RETENTION = tonumber(ARGV[4]), tonumber(ARGV[5])
  GRACE, RETRY_LIMIT = tonumber(ARGV[6]), tonumber(ARGV[7])
  notes, events, logs, ended = {}, {}, {}, {}
  queue_changed, queue_length = false, nil
end

-- A whole number (a time in ms, a count) as text for a command or a note: string.format's integer
-- conversion, not the float printing that tostring(), '..' and redis.call() apply to a Lua number.
local function int_s(x) return string.format('%d', x) end
local function jk(id) return P .. 'job:' .. id end
local function ck(id) return P .. 'chunks:' .. id end
local function note_job(id) notes[#notes + 1] = 'j' .. id end
local function note_stop(w) notes[#notes + 1] = 's' .. w end
local function note_queue() queue_changed = true end
-- Whether a replica other than the caller listens on the change channel, per key prefix: asked of
-- PUBSUB NUMSUB at most once a second instead of at every script run. Library state, not a key:
-- it lives as long as the loaded library, and starts empty after a restart or a reload. A replica
-- calls 'listeners' (below) once it has subscribed, before it serves or looks again after a
-- reconnect, which makes the next script ask afresh: a replica that appears is published to at
-- once. One that dies is published to for at most a second more, which costs only the PUBLISH.
local listening = {}
local function others_listen()
  local c = listening[P]
  if not c or math.abs(NOW - c[1]) >= 1000 then
    c = {NOW, redis.call('PUBSUB', 'NUMSUB', P .. 'ev')[2] > 1}
    listening[P] = c
  end
  return c[2]
end
-- The queue note carries a version and the queue length: a replica wakes at most one long poll
-- per queued job, and ignores a note older than what it already knows. The notes go to the other
-- replicas in one message per script run ("origin\nnote\nnote..."), not one per note: each
-- message costs every replica a read and a parse. A replica alone on its endpoint (the channel's
-- only subscriber is its own) publishes nothing: the caller applies the notes itself. A replica
-- subscribes before it serves, so a script that sees one subscriber runs before any other replica
-- could wait on its notes.
local function reply(result)
  if queue_changed then
    local v = redis.call('INCR', P .. 'qver')
    -- queue_length: set by a function that knows it already (submit, from its push).
    local n = queue_length or redis.call('LLEN', P .. 'queue') + redis.call('LLEN', P .. 'queue:low')
    notes[#notes + 1] = string.format('q%d:%d', v, n)
  end
  if #notes > 0 and others_listen() then
    redis.call('PUBLISH', P .. 'ev', ORIGIN .. '\n' .. table.concat(notes, '\n'))
  end
  return {result, notes, events, logs, ended}
end
local function qkey(k)
  if redis.call('HGET', k, 'low') == '1' then return P .. 'queue:low' end
  return P .. 'queue'
end
local function expire_at(id, k, at)
  redis.call('HSET', k, 'exp', at)
  redis.call('PEXPIREAT', k, at + SLACK)
  redis.call('PEXPIREAT', ck(id), at + SLACK)
end
-- Payload bytes of queued jobs (StoreOptions::max_queued_bytes): a job holds its 'pb' in 'qb' and
-- in the endpoint's 'qbytes' counter while IN_QUEUE. Every way out of the queue releases it.
local function leave_queue(k)
  local qb = tonumber(redis.call('HGET', k, 'qb') or '0')
  if qb > 0 then
    redis.call('DECRBY', P .. 'qbytes', qb)
    redis.call('HSET', k, 'qb', '0')
  end
end
local function worker_exists(w) return redis.call('ZSCORE', P .. 'workers', w) end
local function queue_stop(w, id)
  local k = P .. 'stop:' .. w
  if redis.call('LLEN', k) >= 1024 then return end
  if redis.call('LPOS', k, id) then return end
  redis.call('RPUSH', k, id)
  note_stop(w)
end
-- A worker not seen yet is recorded as last seen at time 0: its stop channel exists until the next
-- sweep finds it silent.
local function request_stop(w, id)
  if not w or w == '' then return end
  redis.call('ZADD', P .. 'workers', 'NX', 0, w)
  queue_stop(w, id)
end
-- The fields finish() reads, in this order: a caller that has read them already (with more after
-- them, as post_result does) passes them in, one HMGET less.
local function read_finish(k)
  return redis.call('HMGET', k, 'st', 'sync', 'webhook', 'exp', 'id', 'hs', 'sta', 'qd', 'he', 'err', 'w',
    'ch')
end
-- f: read_finish()'s fields, or nil to read them here. out: the output the end sets (with the
-- progress cleared), or nil to keep the job's own. `...`: more field/value pairs to set with the
-- end: one HSET for all.
local function finish(id, k, status, f, out, ...)
  f = f or read_finish(k)
  if f[1] == 'IN_QUEUE' then
    redis.call('LREM', qkey(k), '0', id)
    leave_queue(k)
    note_queue()
  end
  redis.call('ZREM', P .. 'running', id)
  local keep = RETENTION
  if f[2] == '1' then keep = RUNSYNC_RETENTION end
  local at = NOW + keep
  -- A job not ended yet has its TTL deadline as 'exp' (submit, retry).
  local ttl_at = tonumber(f[4]) or tonumber(redis.call('ZSCORE', P .. 'ttl', id))
  if ttl_at and ttl_at < at then at = ttl_at end
  local at_s = int_s(at)
  -- Removed at 'at' by the sweep, which finds it in its state's 'done:' set (sweep_ended()).
  -- A job that can no longer be retried leaves the TTL index now: its end is its last deadline.
  -- FAILED and TIMED_OUT jobs keep their entry there, which /retry reads the TTL deadline from.
  redis.call('ZADD', P .. 'done:' .. status, at_s, id)
  if status == 'COMPLETED' or status == 'CANCELLED' then redis.call('ZREM', P .. 'ttl', id) end
  if out then
    redis.call('HSET', k, 'st', status, 'fin', NOW_S, 'exp', at_s, 'out', out, 'prog', '', ...)
  else
    redis.call('HSET', k, 'st', status, 'fin', NOW_S, 'exp', at_s, ...)
  end
  redis.call('PEXPIREAT', k, int_s(at + SLACK))
  -- 'ch' is '0' while the run has posted no chunk (most jobs): no list to expire. A job written
  -- before the field existed has none: its list, if any, gets the expiry as before.
  if f[12] ~= '0' then redis.call('PEXPIREAT', ck(id), int_s(at + SLACK)) end
  if f[3] and f[3] ~= '' then events[#events + 1] = redis.call('HGETALL', k) end
  -- The record of a job that ended COMPLETED or CANCELLED, which stays as it is until it expires
  -- ('exp'): the replica that ran this script answers its waiter's status read from it instead of
  -- asking again (RedisStore::ended_). Not FAILED or TIMED_OUT: /retry through any replica can
  -- requeue those. Not an output past 16 KiB: most ended jobs have no waiter on this replica.
  -- The fields are RedisStore's kEndedFields, in that order; with the output known, they are the
  -- fields read before and what this end set, no second read.
  if status == 'COMPLETED' or status == 'CANCELLED' then
    if out then
      if #out <= 16384 then
        ended[#ended + 1] = {f[5], status, f[6], f[7], f[8], NOW_S, f[9], f[10], '', out, f[11], at_s}
      end
    elseif redis.call('HSTRLEN', k, 'out') <= 16384 then
      ended[#ended + 1] = redis.call('HMGET', k, 'id', 'st', 'hs', 'sta', 'qd', 'fin', 'he', 'err',
        'prog', 'out', 'w', 'exp')
    end
  end
  note_job(id)
end
-- A job starts over (requeue, retry): the old run's output, progress and chunks are not the new
-- run's; stream cursors move past the old chunks.
local function new_run(id, k)
  local cb = tonumber(redis.call('HGET', k, 'cb') or '0') + redis.call('LLEN', ck(id))
  redis.call('DEL', ck(id))
  redis.call('HSET', k, 'hs', 0, 'w', '', 'out', '', 'err', '', 'he', 0, 'prog', '', 'cb', cb, 'dlv', cb,
    'ch', '0')
end
local function enqueue(id, k, front)
  -- Requeued jobs count toward the cap again, but are never refused: they were accepted once.
  leave_queue(k)
  local pb = tonumber(redis.call('HGET', k, 'pb') or '0')
  redis.call('HSET', k, 'st', 'IN_QUEUE', 'qb', pb)
  redis.call('INCRBY', P .. 'qbytes', pb)
  redis.call('ZREM', P .. 'running', id)
  if front then redis.call('LPUSH', qkey(k), id) else redis.call('RPUSH', qkey(k), id) end
  note_queue()
end
local function is_terminal(st) return st ~= 'IN_QUEUE' and st ~= 'IN_PROGRESS' end
-- One job, whatever its state (a TTL run out, a job of the previous key layout): see sweep_ended()
-- for the jobs past their retention, removed many at a time.
local function remove_job(id, k)
  local st = redis.call('HGET', k, 'st')
  if st == 'IN_QUEUE' then
    redis.call('LREM', qkey(k), 0, id)
    leave_queue(k)
    note_queue()
  elseif st == 'IN_PROGRESS' then
    redis.call('ZREM', P .. 'running', id)
  elseif st then
    redis.call('ZREM', P .. 'done:' .. st, id)
    -- The previous layout's indexes of ended jobs (a replica not yet upgraded may still write them).
    redis.call('SREM', P .. 'ended:' .. st, id)
    redis.call('ZREM', P .. 'ended', id)
  end
  redis.call('DEL', k, ck(id))
  redis.call('ZREM', P .. 'ttl', id)
  note_job(id)
end
-- Jobs past their TTL, at most `limit` (a burst of jobs submitted together with one TTL must not
-- hold Redis for the whole burst). TTL is hard: the job is gone in any state; a worker still
-- running it is told to stop. Returns whether more are due.
local function sweep_ttl(limit)
  local due = redis.call('ZRANGEBYSCORE', P .. 'ttl', '-inf', '(' .. NOW_S, 'LIMIT', '0', int_s(limit))
  for _, id in ipairs(due) do
    local k = jk(id)
    local f = redis.call('HMGET', k, 'st', 'w')
    if f[1] == 'IN_PROGRESS' then request_stop(f[2], id) end
    remove_job(id, k)
  end
  return #due == limit
end
-- Jobs past their retention, at most `limit` of each terminal state: a few commands for the whole
-- batch, none per job, so a second's worth of ended jobs (thousands at full load) is removed in
-- pieces of a few milliseconds each instead of stalling every other command for the whole lot.
-- Only the job hashes: a chunk list exists only if the run posted a chunk, and then carries a key
-- expiry of its own a minute later (finish(), post_stream), while deleting a key that is not there
-- costs Redis as much as a lookup of one that is. No job note: a job is removed only after it
-- ended, and its end was noted. Returns whether more are due.
local TERMINAL = {'COMPLETED', 'FAILED', 'TIMED_OUT', 'CANCELLED'}
local function sweep_ended(limit)
  local more = false
  for _, st in ipairs(TERMINAL) do
    local dk = P .. 'done:' .. st
    local ids = redis.call('ZRANGEBYSCORE', dk, '-inf', '(' .. NOW_S, 'LIMIT', '0', int_s(limit))
    if #ids > 0 then
      local gone, keys = ids, {}
      if st == 'FAILED' or st == 'TIMED_OUT' then
        -- Retryable: a replica of the previous version may have requeued one without knowing this
        -- index. Only those still in this state go, with their TTL entry; a requeued one keeps
        -- both its hash and its TTL (these states are rare; a read each is cheap).
        gone = {}
        for _, id in ipairs(ids) do
          if redis.call('HGET', jk(id), 'st') == st then gone[#gone + 1] = id end
        end
        if #gone > 0 then redis.call('ZREM', P .. 'ttl', unpack(gone)) end
      end
      for i, id in ipairs(gone) do keys[i] = jk(id) end
      if #keys > 0 then redis.call('DEL', unpack(keys)) end
      -- The ids are the set's lowest-scored, in order: removed by rank in one pass, not looked up.
      redis.call('ZREMRANGEBYRANK', dk, '0', int_s(#ids - 1))
      if #ids == limit then more = true end
    end
  end
  -- Jobs ended by the previous version, which indexed them in 'ended' and 'ended:<STATUS>'. One
  -- whose hash has expired meanwhile (no state to read) is taken out of every state's set.
  local old = redis.call('ZRANGEBYSCORE', P .. 'ended', '-inf', '(' .. NOW_S, 'LIMIT', '0', int_s(limit))
  for _, id in ipairs(old) do
    local st = redis.call('HGET', jk(id), 'st')
    if not st then
      for _, s in ipairs(TERMINAL) do redis.call('SREM', P .. 'ended:' .. s, id) end
      redis.call('ZREM', P .. 'ttl', id)
    elseif is_terminal(st) then  -- not one requeued meanwhile
      remove_job(id, jk(id))
    end
    redis.call('ZREM', P .. 'ended', id)
  end
  return more or #old == limit
end
local function requeue_lost(id, k, why)
  local w = redis.call('HGET', k, 'w')
  local rq = tonumber(redis.call('HGET', k, 'rq') or '0')
  -- A live holder must not go on with it (nor post for it: it no longer holds the lease). A lost
  -- one is told by its next ping, should it come back.
  local alive = worker_exists(w)
  if rq < RETRY_LIMIT then
    redis.call('HSET', k, 'rq', rq + 1)
    redis.call('INCR', P .. 'retried')
    logs[#logs + 1] = id
    logs[#logs + 1] = 'worker ' .. w .. ' ' .. why .. '; job requeued'
    if alive then queue_stop(w, id) end
    new_run(id, k)
    enqueue(id, k, true)
    note_job(id)
    return
  end
  logs[#logs + 1] = id
  logs[#logs + 1] = 'worker ' .. w .. ' ' .. why .. '; retry limit reached, job failed'
  if alive then queue_stop(w, id) end
  redis.call('HSET', k, 'he', 1, 'err', 'worker ' .. w .. ' ' .. why .. ' ' .. (rq + 1) .. ' times; retry limit reached')
  finish(id, k, 'FAILED')
end
)LUA";

constexpr std::string_view kSubmit = R"LUA(
local id = ARGV[8]
local k = jk(id)
if redis.call('EXISTS', k) == 1 then return reply('duplicate') end
local pb, cap = tonumber(ARGV[16]), tonumber(ARGV[17])
-- Counted in before the check and given back when over the cap: one command for a job accepted.
local held = redis.call('INCRBY', P .. 'qbytes', ARGV[16]) - pb
if cap > 0 and (pb > cap or held > cap - pb) then
  redis.call('DECRBY', P .. 'qbytes', ARGV[16])
  return reply('full ' .. held)
end
-- enqueue() and expire_at() for a job that is new: one HSET, nothing to give back first. The
-- fields whose value would be '0' or '' (lease, retries, holder, output, error, progress) are left
-- out until a run sets them; every reader takes a missing one as that value. A listpack hash finds
-- a field by a linear search, so each field less makes every later read and write of the job
-- cheaper, the insertion of the others first. The stream cursors stay: the stream functions of the
-- previous version (a replica not yet upgraded, sharing the Redis) read them as numbers.
local ttl_at = NOW + tonumber(ARGV[13])
local ttl_s = int_s(ttl_at)
redis.call('HSET', k, 'st', 'IN_QUEUE', 'id', id, 'input', ARGV[9], 'webhook', ARGV[10], 's3',
  ARGV[11], 'xt', ARGV[12], 'ttl', ARGV[13], 'low', ARGV[14], 'sync', ARGV[15], 'qd', NOW_S, 'pb',
  ARGV[16], 'qb', ARGV[16], 'exp', ttl_s, 'cb', '0', 'dlv', '0', 'ch', '0', 'sn', '0')
redis.call('PEXPIREAT', k, int_s(ttl_at + SLACK))
redis.call('ZADD', P .. 'ttl', ttl_s, id)
if ARGV[14] == '1' then
  queue_length = redis.call('RPUSH', P .. 'queue:low', id) + redis.call('LLEN', P .. 'queue')
else
  queue_length = redis.call('RPUSH', P .. 'queue', id) + redis.call('LLEN', P .. 'queue:low')
end
note_queue()
return reply('ok')
)LUA";

// The JSON /stream poll: the chunks no earlier poll returned.
constexpr std::string_view kStream = R"LUA(
local id = ARGV[8]
local k = jk(id)
local f = redis.call('HMGET', k, 'st', 'cb', 'dlv')
if not f[1] then return reply(0) end
local cb, dlv = tonumber(f[2] or '0'), tonumber(f[3] or '0')
local n = redis.call('LLEN', ck(id))
local chunks = redis.call('LRANGE', ck(id), math.max(dlv, cb) - cb, -1)
redis.call('HSET', k, 'dlv', cb + n)
return reply({f[1], cb + n, chunks})
)LUA";

constexpr std::string_view kReadStream = R"LUA(
local id = ARGV[8]
local f = redis.call('HMGET', jk(id), 'st', 'cb')
if not f[1] then return reply(0) end
local cb = tonumber(f[2] or '0')
local last = cb + redis.call('LLEN', ck(id))
local from = math.min(math.max(tonumber(ARGV[9]), cb), last) - cb
return reply({f[1], last, redis.call('LRANGE', ck(id), from, -1)})
)LUA";

constexpr std::string_view kCancel = R"LUA(
local id = ARGV[8]
local k = jk(id)
local f = redis.call('HMGET', k, 'st', 'w')
if not f[1] then return reply(0) end
if f[1] == 'IN_QUEUE' then
  finish(id, k, 'CANCELLED')
elseif f[1] == 'IN_PROGRESS' then
  request_stop(f[2], id)
  finish(id, k, 'CANCELLED')
end
return reply(redis.call('HGET', k, 'st'))
)LUA";

constexpr std::string_view kRetry = R"LUA(
local id = ARGV[8]
local k = jk(id)
local st = redis.call('HGET', k, 'st')
if not st then return reply('not_found') end
if st ~= 'FAILED' and st ~= 'TIMED_OUT' then return reply('not_retryable') end
redis.call('ZREM', P .. 'done:' .. st, id)
redis.call('SREM', P .. 'ended:' .. st, id)  -- the previous layout's (remove_job())
redis.call('ZREM', P .. 'ended', id)
new_run(id, k)
redis.call('HSET', k, 'qd', NOW)
expire_at(id, k, tonumber(redis.call('ZSCORE', P .. 'ttl', id) or NOW))
enqueue(id, k, false)
note_job(id)
return reply('requeued')
)LUA";

constexpr std::string_view kPurge = R"LUA(
local removed = 0
for _, q in ipairs({P .. 'queue', P .. 'queue:low'}) do
  for _, id in ipairs(redis.call('LRANGE', q, 0, -1)) do
    local k = jk(id)
    if redis.call('HGET', k, 'st') == 'IN_QUEUE' then
      removed = removed + 1
      leave_queue(k)
      redis.call('DEL', k, ck(id))
      redis.call('ZREM', P .. 'ttl', id)
      note_job(id)
    end
  end
  redis.call('DEL', q)
end
note_queue()
return reply(removed)
)LUA";

constexpr std::string_view kHealth = R"LUA(
local running = redis.call('ZRANGE', P .. 'running', 0, -1)
local busy = {}
for _, id in ipairs(running) do
  local w = redis.call('HGET', jk(id), 'w')
  if w then busy[w] = true end
end
local idle, working = 0, 0
for _, w in ipairs(redis.call('ZRANGEBYSCORE', P .. 'workers', NOW - GRACE, '+inf')) do
  if busy[w] then working = working + 1 else idle = idle + 1 end
end
-- Ended jobs not yet past their retention (one due but not swept yet is not counted: a sweep
-- removes it when NOW has passed its deadline), and those the previous version indexed.
local function retained(st)
  return redis.call('ZCOUNT', P .. 'done:' .. st, NOW_S, '+inf') +
    redis.call('SCARD', P .. 'ended:' .. st)
end
local failed = retained('FAILED') + retained('TIMED_OUT')
local queued = redis.call('LLEN', P .. 'queue') + redis.call('LLEN', P .. 'queue:low')
return reply({retained('COMPLETED'), failed, #running, queued,
  tonumber(redis.call('GET', P .. 'retried') or '0'), idle, working})
)LUA";

constexpr std::string_view kWorkerBegin = R"LUA(
redis.call('ZADD', P .. 'workers', NOW_S, ARGV[8])
return reply(1)
)LUA";

// Per job: the pop, one read, one write, the running set. The queue bytes go back in one DECRBY.
constexpr std::string_view kTake = R"LUA(
local w, max = ARGV[8], tonumber(ARGV[9])
local known = worker_exists(w)
-- Stops queued or sent to this worker, which a job retried onto it voids (below): mostly none, so
-- one look for all three instead of three commands per job.
local stale = known and
  redis.call('EXISTS', P .. 'stop:' .. w, P .. 'sent:' .. w, P .. 'sentn:' .. w) > 0
local out, released = {}, 0
for _, q in ipairs({P .. 'queue', P .. 'queue:low'}) do
  while #out < max do
    local id = redis.call('LPOP', q)
    if not id then break end
    note_queue()
    local k = jk(id)
    local f = redis.call('HMGET', k, 'st', 'qb', 'lease', 'input', 's3', 'webhook', 'xt', 'ttl',
      'low', 'rq')
    if f[1] == 'IN_QUEUE' then
      -- leave_queue() and the lease's increment, in the one HSET.
      released = released + tonumber(f[2] or '0')
      local lease = tonumber(f[3] or '0') + 1
      redis.call('HSET', k, 'st', 'IN_PROGRESS', 'qb', '0', 'lease', int_s(lease), 'sta', NOW_S, 'lst',
        NOW_S, 'hs', '1', 'w', w, 'ack', '0')
      redis.call('ZADD', P .. 'running', NOW_S, id)
      if stale then
        -- A job retried onto the worker that was told to stop it before: the old stop is void.
        redis.call('LREM', P .. 'stop:' .. w, '0', id)
        redis.call('LREM', P .. 'sent:' .. w, '0', id)
        redis.call('HDEL', P .. 'sentn:' .. w, id)
      end
      -- No job note: see store.h, Topic.
      out[#out + 1] = {id, lease, f[4], f[5], f[6], f[7], f[8], f[9], f[10]}
    end
  end
end
if released > 0 then redis.call('DECRBY', P .. 'qbytes', released) end
return reply(out)
)LUA";

constexpr std::string_view kRelease = R"LUA(
local w = ARGV[8]
local released = {}
for i = 9, #ARGV - 1, 2 do
  local id = ARGV[i]
  local k = jk(id)
  local f = redis.call('HMGET', k, 'st', 'w', 'lease')
  if f[1] == 'IN_PROGRESS' and f[2] == w and f[3] == ARGV[i + 1] then
    new_run(id, k)
    enqueue(id, k, true)
    note_job(id)
    released[#released + 1] = id
  end
end
return reply(released)
)LUA";

// Results, progress and chunks are taken only from the worker holding the job. The holder's late
// posts after the end are ignored; anyone else's are refused (the job is untouched).
constexpr std::string_view kPostResult = R"LUA(
local w, id, kind = ARGV[8], ARGV[9], ARGV[10]
redis.call('ZADD', P .. 'workers', NOW_S, w)  -- the post's request is a sign of life
local k = jk(id)
-- read_finish()'s fields and the executionTimeout: one read for the checks and the end.
local f = redis.call('HMGET', k, 'st', 'sync', 'webhook', 'exp', 'id', 'hs', 'sta', 'qd', 'he', 'err',
  'w', 'ch', 'xt', 'sn')
local st, holder = f[1], f[11]
if not st then return reply({'not_found'}) end
if is_terminal(st) and holder == w then return reply({'ignored'}) end
if not (st == 'IN_PROGRESS' and holder == w) then return reply({'refused', st, holder}) end
if kind == 'p' then
  redis.call('HSET', k, 'prog', ARGV[11], 'lst', NOW_S, 'ack', '1')
  note_job(id)
  return reply({'accepted'})
end
-- A job that never had a stop sent ('sn' '0', set at submit) has none to clear. One written before
-- the field existed is looked for as before.
if f[14] ~= '0' then
  local sk, nk = P .. 'sent:' .. w, P .. 'sentn:' .. w
  if redis.call('EXISTS', sk, nk) > 0 then
    redis.call('LREM', sk, '0', id)
    redis.call('HDEL', nk, id)
  end
end
-- Once the executionTimeout has run out the job ends TIMED_OUT, as the sweep would have ended it:
-- the worker knows the same deadline (job-take's policy) and often reports first.
if NOW - tonumber(f[7]) >= tonumber(f[13]) then
  finish(id, k, 'TIMED_OUT', f, nil, 'he', '1', 'err',
    'job exceeded its execution timeout of ' .. f[13] .. ' ms')
  return reply({'accepted'})
end
if kind == 'e' then
  finish(id, k, 'FAILED', f, ARGV[11], 'err', ARGV[12], 'he', '1')
else
  finish(id, k, 'COMPLETED', f, ARGV[11])
end
return reply({'accepted'})
)LUA";

constexpr std::string_view kPostStream = R"LUA(
local w, id = ARGV[8], ARGV[9]
redis.call('ZADD', P .. 'workers', NOW_S, w)  -- the post's request is a sign of life
local k = jk(id)
local f = redis.call('HMGET', k, 'st', 'w', 'exp')
if not f[1] then return reply({'not_found'}) end
if is_terminal(f[1]) and f[2] == w then return reply({'ignored'}) end
if not (f[1] == 'IN_PROGRESS' and f[2] == w) then return reply({'refused', f[1], f[2]}) end
redis.call('HSET', k, 'lst', NOW_S, 'ack', '1', 'ch', '1')
redis.call('RPUSH', ck(id), ARGV[10])
if f[3] then redis.call('PEXPIREAT', ck(id), int_s(tonumber(f[3]) + SLACK)) end
note_job(id)
return reply({'accepted'})
)LUA";

// The heartbeat: a sign of life; each listed job not (or no longer) assigned here is queued for
// the stop channel again; a stop whose job the worker no longer lists has been acted on.
constexpr std::string_view kPing = R"LUA(
local w = ARGV[8]
redis.call('ZADD', P .. 'workers', NOW_S, w)
redis.call('HSET', P .. 'worker:' .. w, 'lp', NOW_S, 'pinged', '1')
local listed = {}
for i = 9, #ARGV do listed[ARGV[i]] = true end
local sk = P .. 'sent:' .. w
for _, id in ipairs(redis.call('LRANGE', sk, 0, -1)) do
  if not listed[id] then
    redis.call('LREM', sk, 0, id)
    redis.call('HDEL', P .. 'sentn:' .. w, id)
  end
end
for i = 9, #ARGV do
  local id = ARGV[i]
  local k = jk(id)
  local f = redis.call('HMGET', k, 'st', 'w')
  if f[1] == 'IN_PROGRESS' and f[2] == w then
    redis.call('HSET', k, 'lst', NOW_S, 'ack', '1')
  else
    queue_stop(w, id)
  end
end
return reply(1)
)LUA";

// job-take's job_in_progress flag; a stop is re-announced this way at most 3 times.
constexpr std::string_view kReportInProgress = R"LUA(
local w = ARGV[8]
redis.call('ZADD', P .. 'workers', NOW_S, w)  -- the job-take request's sign of life
local sk, nk = P .. 'sent:' .. w, P .. 'sentn:' .. w
if ARGV[9] ~= '1' then
  redis.call('DEL', sk, nk)
  return reply(1)
end
for _, id in ipairs(redis.call('LRANGE', sk, 0, -1)) do
  local n = tonumber(redis.call('HGET', nk, id) or '0')
  if n < 3 then
    local f = redis.call('HMGET', jk(id), 'st', 'w')
    if not (f[1] == 'IN_PROGRESS' and f[2] == w) then
      redis.call('HSET', nk, id, n + 1)
      queue_stop(w, id)
    end
  end
end
return reply(1)
)LUA";

constexpr std::string_view kTakeStop = R"LUA(
local w = ARGV[8]
if not worker_exists(w) then return reply({}) end
local stk, sk, nk = P .. 'stop:' .. w, P .. 'sent:' .. w, P .. 'sentn:' .. w
local stops = redis.call('LRANGE', stk, 0, -1)
for _, id in ipairs(stops) do
  if not redis.call('LPOS', sk, id) then
    if redis.call('LLEN', sk) >= 256 then
      local old = redis.call('LPOP', sk)
      if old then redis.call('HDEL', nk, old) end
    end
    redis.call('RPUSH', sk, id)
    redis.call('HDEL', nk, id)
    -- The job remembers that a stop for it went out ('sn'): its result post looks for sent stops
    -- to clear only then (most jobs never have one).
    if redis.call('EXISTS', jk(id)) == 1 then redis.call('HSET', jk(id), 'sn', '1') end
  end
end
redis.call('DEL', stk)
return reply(stops)
)LUA";

// Time: silent workers, TTL, executionTimeout, unlisted jobs, retention. Idempotent, so every
// replica may run it; the deadlines live in sorted sets, so a sweep reads only what is due (and
// the running set, bounded by the workers' concurrency).
constexpr std::string_view kSweep = R"LUA(
local limit = tonumber(ARGV[8])
-- A later call of the same sweep (ARGV[9] '0': more was due than one call takes) does only the
-- bounded parts, TTLs and retention; the others read everything due at once.
if ARGV[9] == '0' then
  local more = sweep_ttl(limit)
  more = sweep_ended(limit) or more
  return reply(more and 1 or 0)
end
local lost = {}
for _, w in ipairs(redis.call('ZRANGEBYSCORE', P .. 'workers', '-inf', '(' .. (NOW - GRACE))) do
  lost[w] = true
  redis.call('ZREM', P .. 'workers', w)
  redis.call('DEL', P .. 'worker:' .. w, P .. 'stop:' .. w, P .. 'sent:' .. w, P .. 'sentn:' .. w)
end
local more = sweep_ttl(limit)
for _, id in ipairs(redis.call('ZRANGE', P .. 'running', 0, -1)) do
  local k = jk(id)
  local f = redis.call('HMGET', k, 'st', 'sta', 'xt', 'w', 'lst')
  if f[1] ~= 'IN_PROGRESS' then
    redis.call('ZREM', P .. 'running', id)
  else
    local sta, xt, w, lst = tonumber(f[2]), tonumber(f[3]), f[4], tonumber(f[5])
    if NOW - sta > xt then
      request_stop(w, id)
      redis.call('HSET', k, 'he', 1, 'err', 'job exceeded its execution timeout of ' .. xt .. ' ms')
      finish(id, k, 'TIMED_OUT')
    elseif lost[w] then
      requeue_lost(id, k, 'stopped responding (heartbeat lost)')
    elseif worker_exists(w) then
      local wf = redis.call('HMGET', P .. 'worker:' .. w, 'pinged', 'lp')
      if wf[1] == '1' and tonumber(wf[2]) > lst and NOW - lst > GRACE then
        local a = redis.call('HMGET', k, 'ack', 'uq')
        local uq = tonumber(a[2] or '0')
        if a[1] ~= '1' and uq < RETRY_LIMIT then
          -- Never listed nor posted for: the take's answer never reached the worker (its replica
          -- died before answering). No retry: back to the head, as a release would have put it.
          redis.call('HSET', k, 'uq', uq + 1)
          logs[#logs + 1] = id
          logs[#logs + 1] = 'worker ' .. w .. ' never reported holding the job: its job-take ' ..
            'response was lost; job back at the head of the queue'
          queue_stop(w, id)
          new_run(id, k)
          enqueue(id, k, true)
          note_job(id)
        else
          requeue_lost(id, k, 'no longer reports holding the job')
        end
      end
    end
  end
end
more = sweep_ended(limit) or more
return reply(more and 1 or 0)
)LUA";

// A replica has just subscribed to the change channel (see others_listen()).
constexpr std::string_view kListeners = R"LUA(
listening[P] = nil
return reply(1)
)LUA";

constexpr std::array<std::string_view, kCount> kBodies = {
    kSubmit,     kStream,      kReadStream,       kCancel,   kRetry,   kPurge,
    kHealth,     kWorkerBegin, kTake,     kRelease, kPostResult,
    kPostStream, kPing,        kReportInProgress, kTakeStop, kSweep, kListeners};
// In Id's order; with the library's version, the names FCALL calls.
constexpr std::array<std::string_view, kCount> kNames = {"submit",      "stream",
                                                         "read_stream", "cancel",
                                                         "retry",       "purge",
                                                         "health",      "worker_begin",
                                                         "take",        "release",
                                                         "post_result", "post_stream",
                                                         "ping",        "report_in_progress",
                                                         "take_stop",   "sweep",
                                                         "listeners"};

// FNV-1a: a digest of the sources that is the same in every build, unlike std::hash.
std::uint64_t digest(std::string_view text) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : text) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

struct Library {
  std::string source;
  std::array<std::string, kCount> names;
};

// One library: the prelude's helpers are defined once, when Redis loads it, not again at every
// call as a script's would be. Its name carries a digest of its text, so replicas of two versions
// sharing one Redis (a rolling upgrade) each call their own functions, and loading it again with
// REPLACE changes nothing for the other.
const Library& library_() {
  static const Library lib = [] {
    // Written with a placeholder for the version, which is the digest of that text.
    constexpr std::string_view kVersion = "@VERSION@";
    std::string text = "#!lua name=podworker_" + std::string(kVersion) + "\n";
    text += kPrelude;
    for (std::size_t i = 0; i < kCount; ++i) {
      text += "redis.register_function('pw_" + std::string(kVersion) + "_" + std::string(kNames[i]) +
              "', function(KEYS, ARGV)\nbegin(ARGV)\n";
      text += kBodies[i];
      text += "end)\n";
    }
    char version[17];
    std::snprintf(version, sizeof version, "%016llx",
                  static_cast<unsigned long long>(digest(text)));
    Library l;
    std::size_t at = 0;
    for (std::size_t next; (next = text.find(kVersion, at)) != std::string::npos;
         at = next + kVersion.size()) {
      l.source.append(text, at, next - at);
      l.source += version;
    }
    l.source.append(text, at);
    for (std::size_t i = 0; i < kCount; ++i)
      l.names[i] = "pw_" + std::string(version) + "_" + std::string(kNames[i]);
    return l;
  }();
  return lib;
}

}  // namespace

std::string_view library() {
  return library_().source;
}

std::string_view function_name(Id id) {
  return library_().names[static_cast<std::size_t>(id)];
}

}  // namespace podworker::endpoint::redis_script

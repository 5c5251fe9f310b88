-- Redis scripts of the job queue (jobqueue/redis_streams.py), one per section.
-- Each runs atomically on the server; a section starts at a `-- name:` line.
-- Each script is one round trip; the path submit -> claim -> run -> record -> wake costs
-- a handful of round trips (see bench/queue.py).

-- name: submit
-- Admit a job: idempotency key first (a repeat returns the first job), then the depth
-- bound, then the job hash and its stream entry.
if ARGV[6] == '1' then
  local known = redis.call('GET', KEYS[3])
  if known then
    -- The same key with another body is a conflict (3), not the first job (2).
    local first = redis.call('HGET', ARGV[8] .. known, 'request')
    if first and first ~= ARGV[3] then return {3, known} end
    return {2, known}
  end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[1]) then return {0, ''} end
if ARGV[6] == '1' then redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[5]) end
redis.call('HSET', KEYS[2], 'id', ARGV[2], 'status', 'queued', 'request', ARGV[3],
           'submitted_at', ARGV[4], 'deadline', ARGV[7], 'attempts', 0, 'owner', ARGV[9],
           'trace_context', ARGV[10] or '', 'owner_name', ARGV[11] or '')
redis.call('XADD', KEYS[1], '*', 'id', ARGV[2])
-- The owner's list of jobs (JobQueue.recent): its newest ARGV[12], for the result's TTL.
redis.call('ZADD', KEYS[4], ARGV[4], ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[4], 0, -(tonumber(ARGV[12]) + 1))
redis.call('EXPIRE', KEYS[4], ARGV[5])
return {1, ARGV[2]}

-- name: take
-- Turn a delivered entry into a run: nothing to run if the job expired or already
-- finished (an earlier delivery), else count the attempt and mark the job running.
local status = redis.call('HGET', KEYS[1], 'status')
if (not status) or status == 'succeeded' or status == 'failed' then return {} end
local attempt = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
redis.call('HSET', KEYS[1], 'status', 'running')
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[1])
local fields = redis.call('HMGET', KEYS[1], 'request', 'submitted_at', 'deadline',
                         'trace_context')
return {fields[1], fields[2], attempt, fields[3] or '', fields[4] or ''}

-- name: record_outcome
-- Record an outcome only if none is recorded yet: at-least-once delivery may run a
-- job twice, and the first finished run's outcome is the one that stands. Then settle
-- the stream entry and tell waiters; the published message carries the final status,
-- so a waiter needs no read after it.
local status = redis.call('HGET', KEYS[1], 'status')
local recorded = 0
if status and status ~= 'succeeded' and status ~= 'failed' then
  redis.call('HSET', KEYS[1], 'status', ARGV[1], 'result', ARGV[2], 'error', ARGV[3],
             'error_code', ARGV[4], 'finished_at', ARGV[6])
  redis.call('EXPIRE', KEYS[1], ARGV[5])
  redis.call('RPUSH', KEYS[2], ARGV[8])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  redis.call('PUBLISH', ARGV[9], ARGV[10])
  recorded = 1
end
if ARGV[7] ~= '' then
  redis.call('XACK', KEYS[3], 'workers', ARGV[7])
  redis.call('XDEL', KEYS[3], ARGV[7])
end
return recorded

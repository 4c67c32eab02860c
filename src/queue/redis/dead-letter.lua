-- dead-letter.lua: settle a delivery by moving its payload to the dead letters (mocra's NACK),
-- and count it off its run (dead, dead by reason, `open` - 1; 0 open = finished, as ack.lua).
-- The XACK result guards the move: an entry that is no longer pending (settled by another
-- consumer after a reclaim) is not dead-lettered (or counted) a second time.
--
-- KEYS[1]  stream key
-- KEYS[2]  its dead-letter stream (<stream key>:dlq)
-- KEYS[3]  the run's hash (<name>:run:<run_id>)
-- KEYS[4]  the runs index (<name>:runs)
-- ARGV[1]  consumer group
-- ARGV[2]  entry id
-- ARGV[3]  payload (as stored, possibly compressed)
-- ARGV[4]  reason (the dead letter's, in full)
-- ARGV[5]  approximate cap of the dead-letter stream (MAXLEN ~)
-- ARGV[6]  seconds a finished run's hash is kept (run_ttl_secs)
-- ARGV[7]  the reason as the run counts it (bounded: a hash field per distinct reason)
--
-- Returns 1 if moved, 0 if the entry was not pending.

if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'payload', ARGV[3], 'reason', ARGV[4], 'original_id', ARGV[2])
redis.call('HINCRBY', KEYS[3], 'dead', 1)
redis.call('HINCRBY', KEYS[3], 'dead:' .. ARGV[7], 1)
if redis.call('HINCRBY', KEYS[3], 'open', -1) <= 0 then
  local tm = redis.call('TIME')
  local now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
  redis.call('HSET', KEYS[3], 'finished_ms', now)
  redis.call('EXPIRE', KEYS[3], ARGV[6])
  redis.call('ZADD', KEYS[4], now, string.match(KEYS[3], '([^:]+)$'))
end
return 1

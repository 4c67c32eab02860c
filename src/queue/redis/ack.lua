-- ack.lua: settle a batch of deliveries (XACK) and count them off their runs, in one step. A
-- run whose `open` count (messages not settled anywhere) reaches 0 here is finished: it gets
-- finished_ms, its expiry, and its place in the runs index. The XACK result guards the count:
-- an entry no longer pending (settled elsewhere after a reclaim) is not counted off twice.
-- The batch also carries counts the worker kept for the runs since its last flush (pages,
-- items, statuses, ...): they were made before the acks they travel with, so a finished run's
-- figures are complete when it is seen finished.
--
-- KEYS[1]     the runs index (<name>:runs)
-- KEYS[2..]   the stream keys and run hashes (<name>:run:<run_id>) the layouts point at
-- ARGV[1]     consumer group
-- ARGV[2]     seconds a finished run's hash is kept (run_ttl_secs)
-- ARGV[3]     ack layout: per group of ids "<stream index>,<run index (0: none)>,<count>;"
-- ARGV[4]     number T of counts
-- ARGV[5..]   T triples: run index, field, increment; then the entry ids, group after group
--
-- Returns the number of entries acked.

local group, ttl = ARGV[1], ARGV[2]
local t = tonumber(ARGV[4])
for i = 0, t - 1 do
  redis.call('HINCRBY', KEYS[tonumber(ARGV[5 + 3 * i])], ARGV[6 + 3 * i], ARGV[7 + 3 * i])
end
local at = 5 + 3 * t
local acked = 0
local now
for s, r, n in string.gmatch(ARGV[3], '(%d+),(%d+),(%d+);') do
  n = tonumber(n)
  local done = redis.call('XACK', KEYS[tonumber(s)], group, unpack(ARGV, at, at + n - 1))
  at = at + n
  acked = acked + done
  if r ~= '0' and done > 0 then
    local run = KEYS[tonumber(r)]
    if redis.call('HINCRBY', run, 'open', -done) <= 0 then
      if not now then
        local tm = redis.call('TIME')
        now = tonumber(tm[1]) * 1000 + math.floor(tonumber(tm[2]) / 1000)
      end
      redis.call('HSET', run, 'finished_ms', now)
      redis.call('EXPIRE', run, ttl)
      redis.call('ZADD', KEYS[1], now, string.match(run, '([^:]+)$'))
    end
  end
end
return acked

-- lease-acquire.lua: take one of `limit` concurrency leases of a key (shared by all workers).
-- KEYS[1]  <name>:rate_limiter:leases:<key>   (ZSET: member = lease id, score = expiry ms, Redis TIME)
-- ARGV[1]  limit (leases held at once)
-- ARGV[2]  lease duration, ms (renewed by the holder while its download runs)
-- ARGV[3]  lease id
-- Returns {1, 0} when taken; {0, ms until the earliest lease expires} when all are held.
-- Expired leases (a worker died holding them) are dropped first. The ZSET holds at most
-- `limit` live members and expires 1 s after its last lease.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[1], math.max(1, tonumber(last[2]) - now) + 1000)
  return {1, 0}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, math.max(0, tonumber(first[2]) - now)}

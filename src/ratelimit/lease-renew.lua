-- lease-renew.lua: extend a held lease (a long download keeps its slot).
-- KEYS[1]  <name>:rate_limiter:leases:<key>
-- ARGV[1]  lease duration, ms;  ARGV[2]  lease id
-- Returns 1 if the lease was still held (and is extended), 0 if it had expired or was released.
if redis.replicate_commands then pcall(redis.replicate_commands) end
if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[2])
if redis.call('PTTL', KEYS[1]) < lease + 1000 then redis.call('PEXPIRE', KEYS[1], lease + 1000) end
return 1

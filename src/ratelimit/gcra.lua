-- gcra.lua: GCRA with reservation (mocra-ts rate limiter), one atomic step on Redis TIME.
-- KEYS[1]  <name>:rate_limiter:gcra:<key>   (string: the key's theoretical arrival time, ms)
-- ARGV[1]  interval between two requests of this key, ms (float > 0)
-- ARGV[2]  longest wait the caller accepts, ms
-- Returns {1, wait_ms}: a slot is reserved; the caller sleeps wait_ms, then sends.
--         {0, wait_ms}: the wait would exceed ARGV[2]; nothing is reserved.
-- The key expires 1 s after its TAT: an idle key vanishes and its next request goes at once.
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local max_wait = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '')
if tat == nil or tat < now then tat = now end
local wait = tat - now
if wait > max_wait then
  return {0, string.format('%.3f', wait)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil(new_tat - now) + 1000)
return {1, string.format('%.3f', wait)}

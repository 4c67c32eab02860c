-- move-due.lua: re-append delayed entries whose due time has come (fields payload, attempt)
-- and drop them from the delayed set, atomically, at most ARGV[2] per call.
--
-- KEYS[1]   the topic's delayed set (<name>:delayed:<topic>)
-- KEYS[2..] the topic's streams (the targets named in the members)
-- ARGV[1]   consumer group (created at "$" on a target stream that does not exist)
-- ARGV[2]   the most entries to move in this call
--
-- Returns {moved, ms until the next member is due (-1 when the set is empty)}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, m in ipairs(due) do
  local a = string.find(m, '|', 1, true)
  local b = a and string.find(m, '|', a + 1, true)
  local c = b and string.find(m, '|', b + 1, true)
  if c then
    local key = string.sub(m, 1, a - 1)
    if redis.call('EXISTS', key) == 0 then
      redis.call('XGROUP', 'CREATE', key, ARGV[1], '$', 'MKSTREAM')
    end
    redis.call('XADD', key, '*', 'payload', string.sub(m, c + 1), 'attempt', string.sub(m, b + 1, c - 1))
  end
  redis.call('ZREM', KEYS[1], m)
end
local nxt = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #nxt == 0 then
  return {#due, -1}
end
local wait = tonumber(nxt[2]) - now
if wait < 0 then wait = 0 end
return {#due, wait}

-- touch.lua: keep long-running deliveries from being reclaimed by resetting their idle time
-- (XCLAIM to the same consumer, min idle 0, JUSTID so the delivery count does not grow).
-- An entry that another consumer has claimed meanwhile is left to it.
--
-- KEYS[1]   stream key
-- ARGV[1]   consumer group
-- ARGV[2]   consumer name
-- ARGV[3..] entry ids
--
-- Returns the number of entries touched.

local n = 0
for i = 3, #ARGV do
  local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[i], ARGV[i], 1, ARGV[2])
  if p[1] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n

-- purge.lua: delete dead-letter streams.
--
-- KEYS  dead-letter streams
--
-- Returns the number of letters deleted.

local n = 0
for _, key in ipairs(KEYS) do
  n = n + redis.call('XLEN', key)
  redis.call('DEL', key)
end
return n

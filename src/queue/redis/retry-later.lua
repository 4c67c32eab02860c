-- retry-later.lua: settle a delivery and park its payload until a due time. The member of the
-- delayed set carries everything needed to re-append it: "<stream key>|<entry id>|<attempt>|
-- <payload>" (the entry id keeps members unique). move-due.lua re-appends it when due.
--
-- KEYS[1]  stream key the entry was read from (and goes back to)
-- KEYS[2]  the topic's delayed set (<name>:delayed:<topic>), score = due time in ms
-- ARGV[1]  consumer group
-- ARGV[2]  entry id
-- ARGV[3]  delay in ms, from Redis TIME (one clock for every worker)
-- ARGV[4]  deliveries so far (the next delivery's attempt is one more)
-- ARGV[5]  payload (as stored)
--
-- Returns the due time in ms, or 0 if the entry was not pending (already settled elsewhere).

if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
local t = redis.call('TIME')
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
redis.call('ZADD', KEYS[2], due, KEYS[1] .. '|' .. ARGV[2] .. '|' .. ARGV[4] .. '|' .. ARGV[5])
return due

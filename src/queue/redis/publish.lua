-- publish.lua: append payloads to one stream (mocra's batch publish, one call per stream key).
--
-- KEYS[1]   stream key
-- ARGV[1]   consumer group; created at "$" first if the stream does not exist (e.g. after a
--           Redis restart without persistence), so nothing appended here is skipped by the group
-- ARGV[2..] payloads, one entry each (field "payload")
--
-- Returns the number of entries added.

local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then
  redis.call('XGROUP', 'CREATE', key, ARGV[1], '$', 'MKSTREAM')
end
for i = 2, #ARGV do
  redis.call('XADD', key, '*', 'payload', ARGV[i])
end
return #ARGV - 1

-- read.lua: one non-blocking read of a topic in strict priority order. High-priority streams
-- are read first; only the credit they leave goes to normal, then to low. COUNT is per stream
-- in XREADGROUP, so the shards are read one after the other with the credit that is left:
-- the total never exceeds ARGV[3].
--
-- KEYS      every stream of one topic, high priority first, shards in order
-- ARGV[1]   consumer group
-- ARGV[2]   consumer name
-- ARGV[3]   the most entries to return (the caller's free credit)
-- ARGV[4]   shards per priority
-- ARGV[5]   shard to start from (the caller rotates it so that no shard starves)
--
-- Returns a flat list: key index (into KEYS), then that stream's entries as XREADGROUP gives
-- them ({id, {field, value, ...}}), repeated. A stream without the group (deleted, or lost in
-- a restart) gets the group created at "$" and is skipped.

local group, consumer = ARGV[1], ARGV[2]
local left = tonumber(ARGV[3])
local shards = tonumber(ARGV[4])
local start = tonumber(ARGV[5])
local out = {}
for p = 0, 2 do
  for i = 0, shards - 1 do
    if left <= 0 then return out end
    local idx = p * shards + ((start + i) % shards) + 1
    local key = KEYS[idx]
    local r = redis.pcall('XREADGROUP', 'GROUP', group, consumer, 'COUNT', left, 'STREAMS', key, '>')
    if type(r) == 'table' and r.err then
      if string.find(r.err, 'NOGROUP', 1, true) then
        redis.call('XGROUP', 'CREATE', key, group, '$', 'MKSTREAM')
      else
        return redis.error_reply(r.err)
      end
    elseif r then
      local entries = r[1][2]
      out[#out + 1] = idx
      out[#out + 1] = entries
      left = left - #entries
    end
  end
end
return out

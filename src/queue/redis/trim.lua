-- trim.lua: drop stream entries that are consumed and old, never one still needed. The MINID
-- is the lowest of: now - ARGV[1], each group's oldest pending entry, and each group's
-- last-delivered id (everything after it is not delivered yet). "~" lets Redis drop whole
-- nodes only, so it trims at most that and usually a little less.
--
-- KEYS[1]  stream key
-- ARGV[1]  ms a consumed entry is kept (channel_config.minid_time in ms; 0 = drop when consumed)
--
-- Returns the number of entries removed.

local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return 0 end
local groups = redis.call('XINFO', 'GROUPS', key)
if #groups == 0 then return 0 end -- nobody consumes it: nothing is known to be consumed

local t = redis.call('TIME')
local minMs = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local minSeq = 0
local function lower(id)
  local d = string.find(id, '-', 1, true)
  local ms, seq = tonumber(string.sub(id, 1, d - 1)), tonumber(string.sub(id, d + 1))
  if ms < minMs or (ms == minMs and seq < minSeq) then
    minMs, minSeq = ms, seq
  end
end

for _, g in ipairs(groups) do
  local name, pending, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1]
    elseif g[i] == 'pending' then pending = g[i + 1]
    elseif g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  lower(last)
  if pending > 0 then
    lower(redis.call('XPENDING', key, name)[2])
  end
end
if minMs <= 0 then return 0 end
return redis.call('XTRIM', key, 'MINID', '~', string.format('%.0f', minMs) .. '-' .. string.format('%.0f', minSeq))

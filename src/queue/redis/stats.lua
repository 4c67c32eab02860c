-- stats.lua: per stream, the entries not yet delivered to the group (lag) and the entries
-- delivered but not settled (pending).
--
-- KEYS     streams
-- ARGV[1]  consumer group
--
-- Returns {lag, pending} per key, flattened, in KEYS order. lag comes from XINFO GROUPS
-- (Redis 7); where Redis cannot tell it (after deletions) the entries after the group's
-- last-delivered id are counted, up to 100000.

local out = {}
for _, key in ipairs(KEYS) do
  local lag, pending = 0, 0
  local groups = redis.pcall('XINFO', 'GROUPS', key)
  if type(groups) == 'table' and not groups.err then
    for _, g in ipairs(groups) do
      local f = {}
      for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
      if f['name'] == ARGV[1] then
        pending = f['pending']
        if f['lag'] then
          lag = f['lag']
        else
          lag = #redis.call('XRANGE', key, '(' .. f['last-delivered-id'], '+', 'COUNT', 100000)
        end
      end
    end
  end
  out[#out + 1] = lag
  out[#out + 1] = pending
end
return out

-- read-plan.lua: how many entries to read from which stream, in strict priority order. High
-- streams come first; only the credit they leave goes to normal, then to low. It looks at each
-- stream's lag (entries not yet delivered to the group, XINFO GROUPS, Redis 7) and hands out
-- the credit; the caller then reads exactly that (XREADGROUP COUNT <n> per stream, pipelined),
-- so the total never exceeds ARGV[2], and the entries themselves do not pass through Lua
-- (converting them to Lua tables and back costs Redis more than the reads do).
--
-- KEYS      every stream of one topic, high priority first, shards in order
-- ARGV[1]   consumer group
-- ARGV[2]   the most entries to read (the caller's free credit)
-- ARGV[3]   shards per priority
-- ARGV[4]   shard to start from (the caller rotates it so that no shard starves)
--
-- Returns a flat list: key index (into KEYS), count, repeated. A stream whose lag Redis cannot
-- tell (after an XDEL) gets all the credit left. A stream without the group (deleted, or lost in
-- a restart) gets it created at "$" and nothing to read.

local group = ARGV[1]
local left = tonumber(ARGV[2])
local shards = tonumber(ARGV[3])
local start = tonumber(ARGV[4])
local out = {}
for p = 0, 2 do
  for i = 0, shards - 1 do
    if left <= 0 then return out end
    local idx = p * shards + ((start + i) % shards) + 1
    local key = KEYS[idx]
    local groups = redis.pcall('XINFO', 'GROUPS', key)
    local found = false
    if type(groups) == 'table' and not groups.err then
      for _, g in ipairs(groups) do
        local name, lag
        for j = 1, #g, 2 do
          if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'lag' then lag = g[j + 1] end
        end
        if name == group then
          found = true
          if not lag then lag = left end
          if lag > 0 then
            local n = math.min(lag, left)
            out[#out + 1] = idx
            out[#out + 1] = n
            left = left - n
          end
        end
      end
    end
    if not found then
      redis.call('XGROUP', 'CREATE', key, group, '$', 'MKSTREAM')
    end
  end
end
return out

-- publish.lua: append one batch of payloads to their streams (field "payload"), one call per
-- batch. With a dedup key, the seen-check and the enqueue are one atomic step: the item is
-- appended only if SET NX marks the key now, so a crash can neither leave a key marked seen
-- without its entry, nor append an entry twice.
--
-- The streams exist with their group (RedisQueue.connect creates them), so an append is one
-- XADD NOMKSTREAM; only when that finds no stream (deleted, or lost in a restart) is it created
-- with the group at "$" before the append (a plain XADD would create it without the group, and
-- the group created later at "$" would skip what was appended meanwhile).
--
-- KEYS[1..n]  the stream keys of this batch
-- KEYS[n+1..] the dedup keys (<name>:cache:dedup:<key>) of the items that have one, and the
--             run hashes (<name>:run:<run_id>) of the items' runs
-- ARGV[1]     consumer group
-- ARGV[2]     dedup TTL in seconds (> 0; unused when no item has a dedup key)
-- ARGV[3]     layout: per item "<stream index>,<dedup key index>,<run index>;" (indexes into
--             KEYS; 0 = no dedup key / no run counted), in item order
-- ARGV[4..]   the payloads, in item order
--
-- Returns one integer per item: -1 = appended; >= 0 = duplicate, and the milliseconds its dedup
-- key still lives (PTTL; a key without expiry reports the full TTL), which bounds how long the
-- caller may remember it as seen.
--
-- Each appended item adds one to its run's `open` count (the run's messages not yet settled),
-- in this same step: a run cannot look finished while an entry of it exists.

local group = ARGV[1]
local ttl = ARGV[2]
local out = {}
local item = 0
local opened = {}
for s, d, r in string.gmatch(ARGV[3], '(%d+),(%d+),(%d+);') do
  item = item + 1
  local dk = tonumber(d)
  if dk == 0 or redis.call('SET', KEYS[dk], '1', 'NX', 'EX', ttl) then
    local stream = KEYS[tonumber(s)]
    local payload = ARGV[3 + item]
    if not redis.call('XADD', stream, 'NOMKSTREAM', '*', 'payload', payload) then
      redis.call('XGROUP', 'CREATE', stream, group, '$', 'MKSTREAM')
      redis.call('XADD', stream, '*', 'payload', payload)
    end
    out[item] = -1
    if r ~= '0' then opened[r] = (opened[r] or 0) + 1 end
  else
    local left = redis.call('PTTL', KEYS[dk])
    if left < 0 then left = tonumber(ttl) * 1000 end
    out[item] = left
  end
end
for r, n in pairs(opened) do
  redis.call('HINCRBY', KEYS[tonumber(r)], 'open', n)
end
return out

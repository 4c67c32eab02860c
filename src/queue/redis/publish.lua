-- publish.lua: append one batch of payloads to their streams (field "payload"), one call per
-- batch. With a dedup key, the seen-check and the enqueue are one atomic step: the item is
-- appended only if SET NX marks the key now, so a crash can neither leave a key marked seen
-- without its entry, nor append an entry twice.
--
-- KEYS[1..n]  the stream keys of this batch (n = ARGV[3])
-- KEYS[n+1..] the dedup keys (<name>:cache:dedup:<key>) of the items that have one
-- ARGV[1]     consumer group (created at "$" on a stream that does not exist yet)
-- ARGV[2]     dedup TTL in seconds (> 0; unused when no item has a dedup key)
-- ARGV[3]     n, the number of stream keys
-- ARGV[4]     layout: per item "<stream index>,<dedup key index>;" (indexes into KEYS; dedup
--             key index 0 = no dedup key), in item order
-- ARGV[5..]   the payloads, in item order
--
-- Returns one integer per item: 1 = appended, 0 = duplicate.

local group = ARGV[1]
local ttl = ARGV[2]
local n = tonumber(ARGV[3])
for i = 1, n do
  if redis.call('EXISTS', KEYS[i]) == 0 then
    redis.call('XGROUP', 'CREATE', KEYS[i], group, '$', 'MKSTREAM')
  end
end
local out = {}
local item = 0
for s, d in string.gmatch(ARGV[4], '(%d+),(%d+);') do
  item = item + 1
  local dk = tonumber(d)
  if dk == 0 or redis.call('SET', KEYS[dk], '1', 'NX', 'EX', ttl) then
    redis.call('XADD', KEYS[tonumber(s)], '*', 'payload', ARGV[4 + item])
    out[item] = 1
  else
    out[item] = 0
  end
end
return out

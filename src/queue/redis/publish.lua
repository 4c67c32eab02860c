-- publish-dedup.lua: the seen-check and the enqueue as one atomic step. An item with a dedup
-- key is appended only if SET NX marks the key now; a crash can neither leave a key marked
-- seen without its entry, nor append an entry twice.
--
-- KEYS[1..n]  the stream keys of this batch (n = ARGV[3])
-- KEYS[n+1..] the dedup keys (<name>:cache:dedup:<key>) of the items that have one
-- ARGV[1]     consumer group (created at "$" on a stream that does not exist yet)
-- ARGV[2]     dedup TTL in seconds (> 0)
-- ARGV[3]     n, the number of stream keys
-- ARGV[4..]   three values per item: stream index (into KEYS), dedup key index (into KEYS,
--             0 = no dedup key), payload
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
for i = 4, #ARGV, 3 do
  local stream = KEYS[tonumber(ARGV[i])]
  local d = tonumber(ARGV[i + 1])
  local fresh = d == 0 or redis.call('SET', KEYS[d], '1', 'NX', 'EX', ttl)
  if fresh then
    redis.call('XADD', stream, '*', 'payload', ARGV[i + 2])
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
end
return out

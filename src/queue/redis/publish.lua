-- publish.lua: append one batch of payloads to their streams (field "payload"), one call per
-- batch. With a dedup key, the seen-check and the enqueue are one atomic step: the item is
-- appended only if its fingerprint is marked seen now, so a crash can neither leave a
-- fingerprint marked seen without its entry, nor append an entry twice (a script's effects are
-- replicated and persisted as one unit).
--
-- Two layouts of the seen set (crawler.dedup_layout; keys.ts):
-- - "keys" (mocra's): one key per fingerprint, SET NX EX ttl.
-- - "buckets": one hash per fingerprint prefix, a field per fingerprint (the rest of it, ARGV[4]
--   bytes; value ""). HSETNX is the check and the insert in one command (0 = already there). A
--   bucket's TTL is written (EXPIRE ttl) only when the worker does not know it to live long
--   enough (ARGV[6], seen-keys.ts SeenBuckets) and something was added to it, or a duplicate was
--   found in it and it had no TTL; so a page's new links cost HSETNX + XADD each, as SET NX EX +
--   XADD do in "keys". A bucket the worker expects not to exist yet (ARGV[6] "2") is created as a
--   string holding its first field, SET NX EX: creating it and its TTL in one command (a hash
--   needs HSETNX + EXPIRE, and a crawl much smaller than the bucket count creates a bucket for
--   almost every new URL); its second field makes it a hash (GET, DEL, HSET, EXPIRE: once
--   per bucket).
--
-- The streams exist with their group (RedisQueue.connect creates them), so an append is one
-- XADD NOMKSTREAM; only when that finds no stream (deleted, or lost in a restart) is it created
-- with the group at "$" before the append (a plain XADD would create it without the group, and
-- the group created later at "$" would skip what was appended meanwhile).
--
-- KEYS[1..n]  the stream keys of this batch
-- KEYS[n+1..] "keys": the dedup keys (<name>:cache:dedup:<key>) of the items that have one;
--             "buckets": the buckets (keys.ts seenBucket) those items fall in, each once;
--             then the run hashes (<name>:run:<run_id>) of the items' runs
-- ARGV[1]     consumer group
-- ARGV[2]     TTL in seconds written on a dedup key or bucket (> 0; unused when no item has a
--             dedup key)
-- ARGV[3]     layout: per item "<stream index>,<dedup key index>,<run index>;" (indexes into
--             KEYS; 0 = no dedup key / no run counted), in item order
-- ARGV[4]     field width in bytes: 0 = "keys" layout, > 0 = "buckets" layout
-- ARGV[5]     "buckets": the fields of the items with a dedup key, in item order, concatenated
-- ARGV[6]     "buckets": one byte per KEYS index, "1" for a bucket whose expiry the worker does
--             not know (refresh it if added to; PTTL it for a duplicate), "2" the same and likely
--             absent (try SET NX EX first), "0" otherwise
-- ARGV[7..]   the payloads, in item order
--
-- Returns one integer per item: -1 = appended; >= 0 = duplicate, and the milliseconds its dedup
-- key (or bucket) still lives (PTTL, or the TTL just written; a key without expiry reports the
-- full TTL), which bounds how long the caller may remember it as seen; -2 = duplicate in a
-- bucket the worker knows to live long (ARGV[6] "0"): it knows for how long; -3 = appended, and
-- its bucket created by it (ARGV[6] "2").
--
-- Each appended item adds one to its run's `open` count (the run's messages not yet settled),
-- in this same step: a run cannot look finished while an entry of it exists.

local group = ARGV[1]
local ttl = ARGV[2]
local width = tonumber(ARGV[4])
local fields = ARGV[5]
local unknown = ARGV[6]
local ttlMs = tonumber(ttl) * 1000

-- buckets: those added to in this batch, those whose TTL this batch wrote, those it tried to
-- create; PTTLs read
local added = {}
local refreshed = {}
local tried = {}
local left = {}
local nextField = 1

-- marks item's fingerprint seen: false if it already was, true if added, 'created' if its
-- bucket was created for it
local function mark(dk)
  local key = KEYS[dk]
  if width == 0 then
    return redis.call('SET', key, '1', 'NX', 'EX', ttl)
  end
  local field = string.sub(fields, nextField, nextField + width - 1)
  nextField = nextField + width
  if string.byte(unknown, dk) == 50 and not tried[dk] then
    tried[dk] = true
    if redis.call('SET', key, field, 'NX', 'EX', ttl) then
      refreshed[dk] = true
      return 'created'
    end
  end
  local r = redis.pcall('HSETNX', key, field, '')
  if type(r) == 'number' then
    if r == 1 then added[dk] = true end
    return r == 1
  end
  if not string.find(r.err, 'WRONGTYPE', 1, true) then error(r) end
  -- a bucket holding one fingerprint as a string: a hash of both from now on
  local one = redis.call('GET', key)
  if one == field then return false end
  redis.call('DEL', key)
  redis.call('HSET', key, one, '', field, '')
  redis.call('EXPIRE', key, ttl)
  refreshed[dk] = true
  return true
end

-- how long the duplicate's mark still lives, ms (-2: a bucket the worker knows)
local function remaining(dk)
  if width > 0 then
    if refreshed[dk] then return ttlMs end
    if string.byte(unknown, dk) == 48 then return -2 end
  end
  local ms = left[dk]
  if ms == nil then
    ms = redis.call('PTTL', KEYS[dk])
    if ms < 0 then
      -- no expiry (a bucket re-created after it was deleted by hand): give it one
      if width > 0 then redis.call('EXPIRE', KEYS[dk], ttl) end
      ms = ttlMs
    end
    left[dk] = ms
  end
  return ms
end

local out = {}
local item = 0
local opened = {}
for s, d, r in string.gmatch(ARGV[3], '(%d+),(%d+),(%d+);') do
  item = item + 1
  local dk = tonumber(d)
  local marked = dk == 0 or mark(dk)
  if marked then
    local stream = KEYS[tonumber(s)]
    local payload = ARGV[6 + item]
    if not redis.call('XADD', stream, 'NOMKSTREAM', '*', 'payload', payload) then
      redis.call('XGROUP', 'CREATE', stream, group, '$', 'MKSTREAM')
      redis.call('XADD', stream, '*', 'payload', payload)
    end
    out[item] = marked == 'created' and -3 or -1
    if r ~= '0' then opened[r] = (opened[r] or 0) + 1 end
  else
    out[item] = dk
  end
end
-- buckets added to whose expiry the worker does not know: their TTL, once each
for dk in pairs(added) do
  if string.byte(unknown, dk) ~= 48 and not refreshed[dk] then
    redis.call('EXPIRE', KEYS[dk], ttl)
    refreshed[dk] = true
  end
end
-- a duplicate's remaining time once every bucket of the batch is settled
for i = 1, item do
  if out[i] >= 0 then out[i] = remaining(out[i]) end
end
for r, n in pairs(opened) do
  redis.call('HINCRBY', KEYS[tonumber(r)], 'open', n)
end
return out

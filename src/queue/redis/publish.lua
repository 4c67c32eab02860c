-- publish.lua: append one batch of payloads to their streams (field "payload"), one call per
-- batch. With a dedup key, the seen-check and the enqueue are one atomic step: the item is
-- appended only if its fingerprint is marked seen now, so a crash can neither leave a
-- fingerprint marked seen without its entry, nor append an entry twice (a script's effects are
-- replicated and persisted as one unit).
--
-- Two layouts of the seen set (crawler.dedup_layout; keys.ts):
-- - "keys" (mocra's): one key per fingerprint, SET NX EX ttl.
-- - "buckets": one string per fingerprint prefix, holding the rest of each fingerprint as a
--   fixed-width binary field, one after the other (ARGV[4] bytes each). An item is new if its
--   field is not in its bucket (an aligned plain find); new fields are appended and each bucket
--   changed is written once at the end with SET EX ttl (its expiry restarts: every fingerprint
--   in it lives at least ttl seconds after it was added).
--
-- The streams exist with their group (RedisQueue.connect creates them), so an append is one
-- XADD NOMKSTREAM; only when that finds no stream (deleted, or lost in a restart) is it created
-- with the group at "$" before the append (a plain XADD would create it without the group, and
-- the group created later at "$" would skip what was appended meanwhile).
--
-- KEYS[1..n]  the stream keys of this batch
-- KEYS[n+1..] "keys": the dedup keys (<name>:cache:dedup:<key>) of the items that have one;
--             "buckets": the buckets (<name>:cache:seen:<prefix>) those items fall in, each once;
--             then the run hashes (<name>:run:<run_id>) of the items' runs
-- ARGV[1]     consumer group
-- ARGV[2]     dedup TTL in seconds (> 0; unused when no item has a dedup key)
-- ARGV[3]     layout: per item "<stream index>,<dedup key index>,<run index>;" (indexes into
--             KEYS; 0 = no dedup key / no run counted), in item order
-- ARGV[4]     field width in bytes: 0 = "keys" layout, > 0 = "buckets" layout
-- ARGV[5]     "buckets": the fields of the items with a dedup key, in item order, concatenated
-- ARGV[6..]   the payloads, in item order
--
-- Returns one integer per item: -1 = appended; >= 0 = duplicate, and the milliseconds its dedup
-- key (or bucket) still lives (PTTL; a key without expiry reports the full TTL), which bounds
-- how long the caller may remember it as seen.
--
-- Each appended item adds one to its run's `open` count (the run's messages not yet settled),
-- in this same step: a run cannot look finished while an entry of it exists.

local group = ARGV[1]
local ttl = ARGV[2]
local width = tonumber(ARGV[4])
local fields = ARGV[5]
local ttlMs = tonumber(ttl) * 1000

-- buckets: contents as read (then with this batch's new fields), which ones changed, PTTLs read
local bucket = {}
local changed = {}
local left = {}
local nextField = 1

-- true if `field` sits in `data` at a multiple of `width` (a match across two fields is not one)
local function holds(data, field)
  local from = 1
  while true do
    local at = string.find(data, field, from, true)
    if not at then return false end
    if (at - 1) % width == 0 then return true end
    from = at + 1
  end
end

-- marks item's fingerprint seen; false if it already was
local function mark(dk)
  if width == 0 then
    return redis.call('SET', KEYS[dk], '1', 'NX', 'EX', ttl)
  end
  local field = string.sub(fields, nextField, nextField + width - 1)
  nextField = nextField + width
  local data = bucket[dk]
  if data == nil then
    data = redis.call('GET', KEYS[dk]) or ''
  end
  if holds(data, field) then
    bucket[dk] = data
    return false
  end
  bucket[dk] = data .. field
  changed[dk] = true
  return true
end

-- how long the duplicate's mark still lives, ms
local function remaining(dk)
  if width > 0 and changed[dk] then return ttlMs end -- rewritten below with the full TTL
  local ms = left[dk]
  if ms == nil then
    ms = redis.call('PTTL', KEYS[dk])
    if ms < 0 then ms = ttlMs end
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
  if dk == 0 or mark(dk) then
    local stream = KEYS[tonumber(s)]
    local payload = ARGV[5 + item]
    if not redis.call('XADD', stream, 'NOMKSTREAM', '*', 'payload', payload) then
      redis.call('XGROUP', 'CREATE', stream, group, '$', 'MKSTREAM')
      redis.call('XADD', stream, '*', 'payload', payload)
    end
    out[item] = -1
    if r ~= '0' then opened[r] = (opened[r] or 0) + 1 end
  else
    out[item] = dk
  end
end
-- a duplicate's remaining time once every bucket of the batch is known
for i = 1, item do
  if out[i] ~= -1 then out[i] = remaining(out[i]) end
end
for dk in pairs(changed) do
  redis.call('SET', KEYS[dk], bucket[dk], 'EX', ttl)
end
for r, n in pairs(opened) do
  redis.call('HINCRBY', KEYS[tonumber(r)], 'open', n)
end
return out

-- store-items.lua: the seen-check and the append of a page's items as one atomic step. A page
-- (one request fingerprint) is appended only if SADD adds its fingerprint now, so a redelivered
-- response adds nothing, and a crash can neither mark a page stored without its items nor
-- append its items twice. One call carries several pages of one module.
--
-- KEYS[1]  the item stream   <name>:items:<module>   (entry fields: fingerprint, item)
-- KEYS[2]  the seen-set      <name>:items:<module>:seen
-- ARGV[1]  MAXLEN ~ for the stream (0 = no trim: items stay until exported and removed)
-- ARGV[2]  TTL in seconds of the seen-set, refreshed by every call (0 = no TTL)
-- ARGV[3..] per page: fingerprint, item count n, then n item JSON texts
--
-- Returns one integer per page: 1 = stored now, 0 = stored before.

local stream, seen = KEYS[1], KEYS[2]
local maxlen = tonumber(ARGV[1])
local seenTtl = tonumber(ARGV[2])
local out = {}
local i = 3
while i <= #ARGV do
  local fp = ARGV[i]
  local n = tonumber(ARGV[i + 1])
  if redis.call('SADD', seen, fp) == 1 then
    for j = i + 2, i + 1 + n do
      if maxlen > 0 then
        redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 'fingerprint', fp, 'item', ARGV[j])
      else
        redis.call('XADD', stream, '*', 'fingerprint', fp, 'item', ARGV[j])
      end
    end
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  i = i + 2 + n
end
if seenTtl > 0 then
  redis.call('EXPIRE', seen, seenTtl)
end
return out

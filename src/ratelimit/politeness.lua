-- politeness.lua: adaptive rate, suspension and circuit breaker of one key, shared by all workers.
-- KEYS[1]  <name>:rate_limiter:suspended:<key>  (mocra's key: suspend-until ms (Redis TIME), SET PX)
-- KEYS[2]  <name>:rate_limiter:adaptive:<key>   (HASH f = rate factor (0..1], ok = successes since the
--          last change, fails = consecutive connection failures; PEXPIRE ARGV[2] after every write)
-- ARGV[1]  op: "state" | "suspend" | "backoff" | "success" | "failure"
-- ARGV[2]  idle ttl of the HASH, ms
-- state:   -> {suspended ms left, f, fails}
-- suspend: ARGV[3] ms                                     -> {suspended ms left, f, fails}
-- backoff: ARGV[3] multiplier, ARGV[4] floor factor        -> {f, changed 0/1, fails}
-- success: ARGV[3] recover multiplier, ARGV[4] successes per step, ARGV[5] 1 = count towards recovery
--                                                          -> {f, recovered 0/1, previous fails}
-- failure: ARGV[3] failures that open the circuit, ARGV[4] open ms
--                                                          -> {fails, opened 0/1, 0}
-- Numbers come back as strings (Lua numbers would be truncated to integers).
if redis.replicate_commands then pcall(redis.replicate_commands) end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local op = ARGV[1]
local ttl = tonumber(ARGV[2])
local h = redis.call('HMGET', KEYS[2], 'f', 'ok', 'fails')
local f = tonumber(h[1]) or 1
local ok = tonumber(h[2]) or 0
local fails = tonumber(h[3]) or 0
local function left()
  local u = tonumber(redis.call('GET', KEYS[1]) or '')
  if u == nil or u <= now then return 0 end
  return u - now
end
local function save()
  redis.call('HSET', KEYS[2], 'f', string.format('%.6f', f), 'ok', ok, 'fails', fails)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
local function suspend(ms)
  local untl = now + ms
  local cur = tonumber(redis.call('GET', KEYS[1]) or '')
  if cur ~= nil and cur > untl then return end
  redis.call('SET', KEYS[1], string.format('%d', untl), 'PX', math.max(1, math.ceil(ms)))
end
local function s(x) return string.format('%.6f', x) end

if op == 'state' then
  return {s(left()), s(f), tostring(fails)}
elseif op == 'suspend' then
  suspend(tonumber(ARGV[3]))
  return {s(left()), s(f), tostring(fails)}
elseif op == 'backoff' then
  local nf = math.max(tonumber(ARGV[4]), f * tonumber(ARGV[3]))
  local changed = 0
  if nf < f then changed = 1 end
  f = nf
  ok = 0
  save()
  return {s(f), tostring(changed), tostring(fails)}
elseif op == 'success' then
  local prev = fails
  local recovered = 0
  local dirty = fails ~= 0
  fails = 0
  if f < 1 and ARGV[5] == '1' then
    ok = ok + 1
    dirty = true
    if ok >= tonumber(ARGV[4]) then
      f = math.min(1, f * tonumber(ARGV[3]))
      ok = 0
      recovered = 1
    end
  end
  if dirty then save() end
  return {s(f), tostring(recovered), tostring(prev)}
elseif op == 'failure' then
  fails = fails + 1
  local opened = 0
  if fails >= tonumber(ARGV[3]) then
    suspend(tonumber(ARGV[4]))
    opened = 1
    -- half-open: after the pause, one more failure opens it again
    fails = tonumber(ARGV[3]) - 1
  end
  save()
  return {tostring(fails), tostring(opened), '0'}
end
return redis.error_reply('politeness.lua: unknown op ' .. tostring(op))

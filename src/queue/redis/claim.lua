-- claim.lua: reclaim entries left pending too long by a consumer that died or stalled
-- (XAUTOCLAIM), with their delivery counts. An entry delivered more than ARGV[6] times is
-- not handed out again: it goes to the dead letters and is acked, in this same call.
--
-- KEYS[1]  stream key
-- KEYS[2]  its dead-letter stream (<stream key>:dlq)
-- KEYS[3]  its poison records (<stream key>:poison): hash entry id -> reason, written by the
--          watchdog of a worker that module code blocked while handling the entry
-- ARGV[1]  consumer group
-- ARGV[2]  consumer name (the claimed entries become this consumer's)
-- ARGV[3]  min idle time in ms (claim_min_idle)
-- ARGV[4]  cursor (start id; "0-0" to start over)
-- ARGV[5]  the most entries to claim
-- ARGV[6]  most deliveries allowed
-- ARGV[7]  approximate cap of the dead-letter stream (MAXLEN ~)
-- ARGV[8]  most deliveries allowed for an entry with a poison record (request_max_retries)
--
-- Returns {next cursor, dead-lettered count, {id, deliveries, {field, value, ...}}, ...}.

local key, group = KEYS[1], ARGV[1]
local most = tonumber(ARGV[6])
local r = redis.call('XAUTOCLAIM', key, group, ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {r[1], 0}
local dead = 0
for _, e in ipairs(r[2]) do
  if type(e) == 'table' then
    local id, fields = e[1], e[2]
    local p = redis.call('XPENDING', key, group, id, id, 1)
    local n = (p[1] and p[1][4]) or 1
    local poison = redis.call('HGET', KEYS[3], id)
    if n > most or (poison and n > tonumber(ARGV[8])) then
      local payload = ''
      for i = 1, #fields, 2 do
        if fields[i] == 'payload' then payload = fields[i + 1] end
      end
      redis.call('XACK', key, group, id)
      local reason = 'delivered ' .. (n - 1) .. ' times without being acked'
      if poison then
        reason = poison .. ' (after ' .. (n - 1) .. ' attempts)'
        redis.call('HDEL', KEYS[3], id)
      end
      redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*', 'payload', payload,
        'reason', reason, 'original_id', id)
      dead = dead + 1
    else
      out[#out + 1] = {id, n, fields}
    end
  end
end
out[2] = dead
return out

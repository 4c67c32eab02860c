-- claim.lua: reclaim entries left pending too long by a consumer that died or stalled
-- (XAUTOCLAIM), with their delivery counts. An entry delivered more than ARGV[6] times, or
-- more than ARGV[7] times with a poison record (the watchdog of a worker its module code
-- blocked says why), is not handed out again: it comes back apart, still pending (now this consumer's), and the
-- caller dead-letters it with dead-letter.lua, which also counts it off its run (only the
-- caller can decode the payload to know the run). A caller that dies first leaves it pending:
-- the next claim finds it again.
--
-- KEYS[1]  stream key
-- KEYS[2]  its poison records (<stream key>:poison): hash entry id -> reason, written by the
--          watchdog of a worker that module code blocked while handling the entry
-- ARGV[1]  consumer group
-- ARGV[2]  consumer name (the claimed entries become this consumer's)
-- ARGV[3]  min idle time in ms (claim_min_idle)
-- ARGV[4]  cursor (start id; "0-0" to start over)
-- ARGV[5]  the most entries to claim
-- ARGV[6]  most deliveries allowed
-- ARGV[7]  most deliveries allowed for an entry with a poison record (request_max_retries)
--
-- Returns {next cursor, {poison entry, ...}, entry, ...}, each entry {id, deliveries, {field,
-- value, ...}}; a poison entry has a fourth element, its poison record's reason (or "").

local key, group = KEYS[1], ARGV[1]
local most = tonumber(ARGV[6])
local r = redis.call('XAUTOCLAIM', key, group, ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local poison = {}
local out = {r[1], poison}
for _, e in ipairs(r[2]) do
  if type(e) == 'table' then
    local id, fields = e[1], e[2]
    local p = redis.call('XPENDING', key, group, id, id, 1)
    local n = (p[1] and p[1][4]) or 1
    local reason = redis.call('HGET', KEYS[2], id)
    if n > most or (reason and n > tonumber(ARGV[7])) then
      poison[#poison + 1] = {id, n, fields, reason or ''}
    else
      out[#out + 1] = {id, n, fields}
    end
  end
end
return out

-- take-request.lua: may this request of a run be downloaded under the run's budgets? One call
-- per request that reaches the download stage, when any budget is set. A fingerprint already
-- counted (a retry, a re-delivery) passes again without counting twice; a new one takes a slot
-- while there is one. The set holds at most max_requests members.
--
-- KEYS[1]  <name>:budget:<run id>:<module>:requests  set of the fingerprints counted
-- KEYS[2]  <name>:budget:<run id>:<module>           hash: requests, items, exhausted (the budget spent)
-- ARGV[1]  request fingerprint
-- ARGV[2]  max_requests (0 = no request cap)
-- ARGV[3]  TTL of both keys, seconds
--
-- Returns 1 admitted, 2 admitted and max_requests is now spent, or {0, budget spent, its limit}
-- when refused.

local limit = tonumber(ARGV[2])
if limit > 0 and redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 1
end
local spent = redis.call('HMGET', KEYS[2], 'exhausted', 'limit')
if spent[1] then
  return {0, spent[1], tonumber(spent[2] or '0')}
end
if limit == 0 then
  return 1
end
local n = redis.call('SCARD', KEYS[1])
if n >= limit then
  redis.call('HSET', KEYS[2], 'exhausted', 'max_requests', 'limit', limit)
  return {0, 'max_requests', limit}
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], 'requests', n + 1)
redis.call('EXPIRE', KEYS[1], ARGV[3])
if n + 1 >= limit then
  redis.call('HSET', KEYS[2], 'exhausted', 'max_requests', 'limit', limit)
  redis.call('EXPIRE', KEYS[2], ARGV[3])
  return 2
end
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1

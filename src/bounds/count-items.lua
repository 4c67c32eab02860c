-- count-items.lua: add a page's stored items to its run's count; spend max_items when reached.
--
-- KEYS[1]  <name>:budget:<run id>:<module>  hash: requests, items, exhausted
-- ARGV[1]  items stored now
-- ARGV[2]  max_items (0 = no item cap)
-- ARGV[3]  TTL of the key, seconds
--
-- Returns {items so far, the budget spent ("max_items" / "max_requests", now or earlier; "" if none), its limit}.

local total = redis.call('HINCRBY', KEYS[1], 'items', tonumber(ARGV[1]))
local limit = tonumber(ARGV[2])
if limit > 0 and total >= limit then
  redis.call('HSETNX', KEYS[1], 'exhausted', 'max_items')
  redis.call('HSETNX', KEYS[1], 'limit', limit)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
local spent = redis.call('HMGET', KEYS[1], 'exhausted', 'limit')
return {total, spent[1] or '', tonumber(spent[2] or '0')}

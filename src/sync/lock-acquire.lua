-- lock-acquire.lua: take a lock if it is free, with a new fencing token.
-- KEYS[1]  <name>:lock:<lock name>   (string "<owner>:<token>", PX = the lease)
-- KEYS[2]  <name>:lock:fence         (the fencing counter: one integer for every lock of the crawl)
-- ARGV[1]  owner id (a worker's lock service)
-- ARGV[2]  lease, ms
-- Returns {token, 0} when taken (token strictly greater than any token handed out before);
-- {0, ms until the holder's lease ends} when someone holds it.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return {0, math.max(0, redis.call('PTTL', KEYS[1]))}
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return {token, 0}

-- leader-acquire.lua: become or stay leader (mocra's key holds the leader's id).
-- KEYS[1]  <name>:leader:cron        (string: the leader's id, PX = the lease)
-- KEYS[2]  <name>:leader:cron:term   (integer: the current term, +1 at every new leader)
-- ARGV[1]  candidate id
-- ARGV[2]  lease, ms
-- Returns {1, term} when the candidate leads (newly elected or renewed), {0, term} when another
-- worker leads. The term key is one integer that lives as long as the crawl name is used.
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
if holder then
  return {0, tonumber(redis.call('GET', KEYS[2]) or '0')}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, redis.call('INCR', KEYS[2])}

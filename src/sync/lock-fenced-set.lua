-- lock-fenced-set.lua: a write guarded by a lock: SET a key only while this holder still holds
-- the lock, checked in the same atomic step (a holder that lost the lock cannot write).
-- KEYS[1]  <name>:lock:<lock name>
-- KEYS[2]  the key to write
-- ARGV[1]  "<owner>:<token>" of the holder
-- ARGV[2]  value
-- ARGV[3]  TTL of the written key, ms (0 = none)
-- Returns 1 when written, 0 when refused (the lock is not held by this holder).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if tonumber(ARGV[3]) > 0 then
  redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
else
  redis.call('SET', KEYS[2], ARGV[2])
end
return 1

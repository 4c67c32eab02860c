-- lock-renew.lua: extend a lock's lease if this holder (owner and token) still holds it.
-- KEYS[1]  <name>:lock:<lock name>
-- ARGV[1]  "<owner>:<token>" of the holder
-- ARGV[2]  lease, ms
-- Returns 1 when renewed, 0 when the lock is lost (expired, or taken by someone else since).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0

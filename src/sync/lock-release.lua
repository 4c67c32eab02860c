-- lock-release.lua: free a lock if this holder still holds it (never someone else's).
-- KEYS[1]  <name>:lock:<lock name>
-- ARGV[1]  "<owner>:<token>" of the holder
-- Returns 1 when released, 0 when it was not held by this holder any more.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

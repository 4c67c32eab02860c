-- pause.lua: change the fleet-wide pause flags and tell every worker, in one step.
-- The global flag is `<name>:engine:pause` ("1" while paused; mocra's name for its pause flag);
-- per-module pauses are a set of module names beside it.
--
-- KEYS[1]   <name>:engine:pause            the global flag
-- KEYS[2]   <name>:engine:pause:modules    set of paused module names
-- ARGV[1]   "pause" | "resume"
-- ARGV[2]   module name, or "" for the whole crawl (each paused module is resumed by name)
-- ARGV[3]   pub/sub channel to notify (<name>:engine:control)
--
-- Returns 1.

if ARGV[1] == 'pause' then
  if ARGV[2] == '' then redis.call('SET', KEYS[1], '1') else redis.call('SADD', KEYS[2], ARGV[2]) end
else
  if ARGV[2] == '' then redis.call('DEL', KEYS[1]) else redis.call('SREM', KEYS[2], ARGV[2]) end
end
redis.call('PUBLISH', ARGV[3], ARGV[1] .. ' ' .. ARGV[2])
return 1

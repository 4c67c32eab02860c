-- dead-letter.lua: settle a delivery by moving its payload to the dead letters (mocra's NACK).
-- The XACK result guards the move: an entry that is no longer pending (settled by another
-- consumer after a reclaim) is not dead-lettered a second time.
--
-- KEYS[1]  stream key
-- KEYS[2]  its dead-letter stream (<stream key>:dlq)
-- ARGV[1]  consumer group
-- ARGV[2]  entry id
-- ARGV[3]  payload (as stored, possibly compressed)
-- ARGV[4]  reason
-- ARGV[5]  approximate cap of the dead-letter stream (MAXLEN ~)
--
-- Returns 1 if moved, 0 if the entry was not pending.

if redis.call('XACK', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'payload', ARGV[3], 'reason', ARGV[4], 'original_id', ARGV[2])
return 1

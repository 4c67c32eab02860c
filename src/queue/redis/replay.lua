-- replay.lua: move the given dead letters back to the stream they came from, as fresh entries
-- (the delivery count starts over), and open each one's run again (`open` + 1, no expiry while
-- open) in the same step, so a run with replayed work is not finished until it is settled.
-- A letter gone meanwhile (replayed or purged elsewhere) is skipped.
--
-- KEYS[1]   dead-letter stream
-- KEYS[2]   the stream its letters go back to
-- KEYS[3..] the letters' run hashes (<name>:run:<run_id>)
-- ARGV[1]   consumer group (created at "$" if the stream does not exist)
-- ARGV[2..] per letter: its id, then the index into KEYS of its run hash
--
-- Returns the number of letters moved.

if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[1], '$', 'MKSTREAM')
end
local moved = 0
for a = 2, #ARGV, 2 do
  local e = redis.call('XRANGE', KEYS[1], ARGV[a], ARGV[a])[1]
  if e then
    local payload = ''
    local fields = e[2]
    for i = 1, #fields, 2 do
      if fields[i] == 'payload' then payload = fields[i + 1] end
    end
    redis.call('XADD', KEYS[2], '*', 'payload', payload)
    redis.call('XDEL', KEYS[1], e[1])
    local run = KEYS[tonumber(ARGV[a + 1])]
    redis.call('HINCRBY', run, 'open', 1)
    redis.call('PERSIST', run)
    moved = moved + 1
  end
end
return moved

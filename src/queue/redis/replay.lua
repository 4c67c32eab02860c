-- replay.lua: move dead letters back to the stream they came from (oldest first), as fresh
-- entries (the delivery count starts over).
--
-- KEYS[1]  dead-letter stream
-- KEYS[2]  the stream its letters go back to
-- ARGV[1]  consumer group (created at "$" if the stream does not exist)
-- ARGV[2]  the most letters to move
--
-- Returns the number of letters moved.

local letters = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', tonumber(ARGV[2]))
if #letters == 0 then return 0 end
if redis.call('EXISTS', KEYS[2]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[2], ARGV[1], '$', 'MKSTREAM')
end
for _, e in ipairs(letters) do
  local payload = ''
  local fields = e[2]
  for i = 1, #fields, 2 do
    if fields[i] == 'payload' then payload = fields[i + 1] end
  end
  redis.call('XADD', KEYS[2], '*', 'payload', payload)
  redis.call('XDEL', KEYS[1], e[1])
end
return #letters

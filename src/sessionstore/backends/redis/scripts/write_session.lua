-- Replace the session with an imported one.
-- ARGV[4]: created, ARGV[5]: updated, ARGV[6]: "1" if a graph context follows
-- in ARGV[7], ARGV[8]: the number of entries n, then n pairs (qa_id, entry),
-- then the trace steps. Returns the update time, or false if it holds nothing.
drop()
local n = tonumber(ARGV[8])
local at = 9
for seq = 1, n do
  redis.call('ZADD', KEYS[2], seq, ARGV[at])
  redis.call('HSET', KEYS[3], ARGV[at], ARGV[at + 1])
  at = at + 2
end
for i = at, #ARGV do redis.call('RPUSH', KEYS[4], ARGV[i]) end
if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'gc', ARGV[7]) end
if is_empty() then return false end
redis.call('HSET', KEYS[1], 'created', ARGV[4], 'updated', ARGV[5], 'seq', n)
index_session('-' .. ARGV[5], 'set')
expire_all()
return ARGV[5]

-- Replace the session with an imported one.
-- ARGV[4]: created, ARGV[5]: updated, ARGV[6]: "1" if a graph context follows
-- in ARGV[7], ARGV[8]: the number of entries n, then n pairs (qa_id, entry),
-- then the number of items m and m pairs (item id, stored item), then the
-- state's revision, the number of its keys k and k pairs (key, JSON text),
-- then a pair (trace id, stored step) per trace step. Returns the update
-- time, or false if it holds nothing.
drop()
local n = tonumber(ARGV[8])
local at = 9
for seq = 1, n do
  redis.call('ZADD', KEYS[2], seq, ARGV[at])
  redis.call('HSET', KEYS[3], ARGV[at], ARGV[at + 1])
  at = at + 2
end
local m = tonumber(ARGV[at])
at = at + 1
for seq = 1, m do
  redis.call('ZADD', KEYS[5], seq, ARGV[at])
  redis.call('HSET', KEYS[6], ARGV[at], ARGV[at + 1])
  at = at + 2
end
local rev, k, size = ARGV[at], tonumber(ARGV[at + 1]), 0
at = at + 2
for _ = 1, k do
  redis.call('HSET', KEYS[7], ARGV[at], ARGV[at + 1])
  size = size + #ARGV[at] + #ARGV[at + 1]
  at = at + 2
end
for i = at, #ARGV, 2 do
  redis.call('SADD', KEYS[8], ARGV[i])
  redis.call('RPUSH', KEYS[4], ARGV[i + 1])
end
if ARGV[6] == '1' then redis.call('HSET', KEYS[1], 'gc', ARGV[7]) end
if rev ~= '0' then redis.call('HSET', KEYS[1], 'rev', rev) end
if is_empty() then return false end
redis.call('HSET', KEYS[1], 'created', ARGV[4], 'updated', ARGV[5], 'seq', n, 'iseq', m,
  'ssize', string.format('%d', size))
index_session('-' .. ARGV[5], 'set')
expire_all()
return ARGV[5]

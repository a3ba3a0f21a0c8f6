-- Read entries, oldest first, in one step. KEYS[2]: order, KEYS[3]: entries.
-- ARGV[1]: how many of the newest, or -1 for all. O(log M + N).
local n = tonumber(ARGV[1])
local ids
if n < 0 then
  ids = redis.call('ZRANGE', KEYS[2], 0, -1)
else
  ids = redis.call('ZRANGE', KEYS[2], -n, -1)
end
local out = {}
-- unpack() is bounded by the Lua stack: fetch in slices.
for i = 1, #ids, 1000 do
  local slice = redis.call('HMGET', KEYS[3], unpack(ids, i, math.min(i + 999, #ids)))
  for j = 1, #slice do out[#out + 1] = slice[j] end
end
return out

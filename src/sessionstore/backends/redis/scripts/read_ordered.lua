-- Read the newest of a session's entries or items, oldest first, in one
-- step. KEYS[1]: their order (a sorted set of ids), KEYS[2]: the hash of
-- id -> stored value. ARGV[1]: how many of the newest, or -1 for all;
-- ARGV[2]: '1' to prefix each value with its id and '|' (items, whose
-- stored form lacks it): half the replies to parse of a list of ids and a
-- list of values. Returns the values (false where one is missing). O(log M + N).
local n = tonumber(ARGV[1])
local ids
if n < 0 then
  ids = redis.call('ZRANGE', KEYS[1], 0, -1)
else
  ids = redis.call('ZRANGE', KEYS[1], -n, -1)
end
local with_ids = ARGV[2] == '1'
local out = {}
-- unpack() is bounded by the Lua stack: fetch in slices.
for i = 1, #ids, 1000 do
  local slice = redis.call('HMGET', KEYS[2], unpack(ids, i, math.min(i + 999, #ids)))
  for j = 1, #slice do
    local value = slice[j]
    if with_ids and value then value = ids[i + j - 1] .. '|' .. value end
    out[#out + 1] = value
  end
end
return out

-- Read a whole session in one consistent step, for export.
-- Returns false if absent, else {meta as flat pairs, entries oldest first, traces}.
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return false end
local ids = redis.call('ZRANGE', KEYS[2], 0, -1)
local entries = {}
for i = 1, #ids, 1000 do
  local slice = redis.call('HMGET', KEYS[3], unpack(ids, i, math.min(i + 999, #ids)))
  for j = 1, #slice do entries[#entries + 1] = slice[j] end
end
return {meta, entries, redis.call('LRANGE', KEYS[4], 0, -1)}

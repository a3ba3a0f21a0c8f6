-- Read a whole session in one consistent step, for export.
-- Returns false if absent, else {meta as flat pairs, entries oldest first,
-- traces, item ids oldest first, their stored items, the state as flat pairs}.
local function ordered(order, hash)
  local ids = redis.call('ZRANGE', order, 0, -1)
  local values = {}
  for i = 1, #ids, 1000 do
    local slice = redis.call('HMGET', hash, unpack(ids, i, math.min(i + 999, #ids)))
    for j = 1, #slice do values[#values + 1] = slice[j] end
  end
  return ids, values
end
local meta = redis.call('HGETALL', KEYS[1])
if #meta == 0 then return false end
local _, entries = ordered(KEYS[2], KEYS[3])
local item_ids, items = ordered(KEYS[5], KEYS[6])
return {
  meta, entries, redis.call('LRANGE', KEYS[4], 0, -1),
  item_ids, items, redis.call('HGETALL', KEYS[7]),
}

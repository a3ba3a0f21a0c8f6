-- Remove the newest item. Returns false if there is none, else
-- {alive, update time, item id, stored item} (alive as removed() returns it).
local newest = redis.call('ZPOPMAX', KEYS[5])
if #newest == 0 then return false end
local stored = redis.call('HGET', KEYS[6], newest[1])
redis.call('HDEL', KEYS[6], newest[1])
local result = removed()
return {result[1], result[2], newest[1], stored}

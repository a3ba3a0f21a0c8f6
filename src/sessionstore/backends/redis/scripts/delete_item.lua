-- Delete one item. ARGV[4]: the item id. Returns false if absent, else
-- removed()'s {alive, update time}.
if redis.call('HDEL', KEYS[6], ARGV[4]) == 0 then return false end
redis.call('ZREM', KEYS[5], ARGV[4])
return removed()

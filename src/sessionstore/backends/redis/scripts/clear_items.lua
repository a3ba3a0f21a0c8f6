-- Delete every item. Returns false if there was none, else removed()'s
-- {alive, update time}.
if redis.call('DEL', KEYS[5], KEYS[6]) == 0 then return false end
return removed()

-- Delete one entry. ARGV[4]: qa_id. Returns false if absent, else
-- {1, update time} while the session lives on, or {0, last update time}
-- when that was all it held and the session ended (see removed()).
if redis.call('HDEL', KEYS[3], ARGV[4]) == 0 then return false end
redis.call('ZREM', KEYS[2], ARGV[4])
return removed()

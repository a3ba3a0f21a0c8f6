-- Create an entry. ARGV[4]: qa_id, ARGV[5]: the stored entry.
-- Returns the session's update time.
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
redis.call('ZADD', KEYS[2], string.format('%d', seq), ARGV[4])
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5])
return touch()

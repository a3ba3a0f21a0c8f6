-- Cluster only: record a session write in the user's index (its own slot).
-- KEYS[1]: the index. ARGV[1]: ttl in ms or "", ARGV[2]: session id,
-- ARGV[3]: -updated, ARGV[4]: "LT" to only move forward in time, "" to set.
-- Same rules as index_session() in _session.lua.
local fresh = redis.call('EXISTS', KEYS[1]) == 0
if ARGV[4] == 'LT' then
  redis.call('ZADD', KEYS[1], 'LT', ARGV[3], ARGV[2])
else
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
end
if ARGV[1] == '' then
  redis.call('PERSIST', KEYS[1])
else
  local left = redis.call('PTTL', KEYS[1])
  if fresh or (left >= 0 and left < tonumber(ARGV[1])) then
    redis.call('PEXPIRE', KEYS[1], ARGV[1])
  end
end
return 1

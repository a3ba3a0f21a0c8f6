-- Remove a session from the user's index unless it was written again since.
-- KEYS[1]: the index. ARGV[1]: session id, ARGV[2]: the -updated it had.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if score and tonumber(score) >= tonumber(ARGV[2]) then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 1
end
return 0

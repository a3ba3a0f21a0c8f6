-- Extend an improve lock's lease if this holder still owns it.
-- KEYS[1]: the lock. ARGV[1]: the holder's token, ARGV[2]: the lease in ms.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0

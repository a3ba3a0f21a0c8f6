-- Delete an improve lock if this holder still owns it: a holder whose lease
-- ran out never deletes the next holder's lock. KEYS[1]: the lock.
-- ARGV[1]: the holder's token.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0

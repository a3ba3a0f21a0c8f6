-- Describe sessions for a page of list_sessions, in one reply (standalone
-- servers only: the keys span slots). KEYS: for each session its meta hash,
-- its entry order (a sorted set) and its item hash, in that order.
-- Returns, per session, its creation time (false: gone), entry and item counts.
local out = {}
for i = 1, #KEYS, 3 do
  out[#out + 1] = redis.call('HGET', KEYS[i], 'created')
  out[#out + 1] = redis.call('ZCARD', KEYS[i + 1])
  out[#out + 1] = redis.call('HLEN', KEYS[i + 2])
end
return out

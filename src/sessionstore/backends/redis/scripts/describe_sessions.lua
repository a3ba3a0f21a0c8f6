-- Describe sessions for a page of list_sessions, in one reply. Standalone
-- servers only: the sessions' keys span slots, so they are built here from
-- each session's key base (ARGV) rather than declared, which a Cluster
-- would refuse. Returns, per session, its creation time (false: gone), its
-- entry count (the order's size) and its item count (the item hash's size).
local out = {}
for i = 1, #ARGV do
  local base = ARGV[i]
  out[#out + 1] = redis.call('HGET', base .. ':meta', 'created')
  out[#out + 1] = redis.call('ZCARD', base .. ':order')
  out[#out + 1] = redis.call('HLEN', base .. ':items')
end
return out

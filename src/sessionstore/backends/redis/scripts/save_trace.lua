-- Append a trace step unless the session holds its trace id.
-- ARGV[4]: the trace id, ARGV[5]: the stored step. Returns the update time,
-- or false (nothing written) when the id is taken.
-- KEYS[8] holds the ids of the session's steps. A session written by a
-- version without it has steps but no such set: it is made from them, once.
if redis.call('EXISTS', KEYS[8]) == 0 then
  local steps = redis.call('LRANGE', KEYS[4], 0, -1)
  for i = 1, #steps do
    local id = trace_id_of(steps[i])
    if id then redis.call('SADD', KEYS[8], id) end
  end
end
if redis.call('SADD', KEYS[8], ARGV[4]) == 0 then return false end
redis.call('RPUSH', KEYS[4], ARGV[5])
return touch()

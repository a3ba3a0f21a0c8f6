-- Apply a change to the session's state. ARGV[4]: the expected revision or
-- '', ARGV[5]: the largest state in bytes, ARGV[6]: the number n of changed
-- keys, then n pairs (key, JSON text or '').
-- Returns {'ok', update time, revision, the state as flat pairs}, or a
-- refusal of state_check.
local n = tonumber(ARGV[6])
local size, refused = state_check(KEYS[1], KEYS[7], ARGV[4], ARGV[5], 7, n)
if refused then return refused end
local rev = state_apply(KEYS[1], KEYS[7], 7, n, size)
return {'ok', touch(), rev, redis.call('HGETALL', KEYS[7])}

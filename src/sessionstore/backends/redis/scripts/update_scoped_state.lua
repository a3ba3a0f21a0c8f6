-- Apply a change to a user's or an app's state, which never expires.
-- KEYS[1]: its meta, KEYS[2]: its values. ARGV[1]: the expected revision or
-- '', ARGV[2]: the largest state in bytes, ARGV[3]: the number n of changed
-- keys, then n pairs (key, JSON text or '').
-- Returns {'ok', revision, the state as flat pairs}, or a refusal of state_check.
local n = tonumber(ARGV[3])
local size, refused = state_check(KEYS[1], KEYS[2], ARGV[1], ARGV[2], 4, n)
if refused then return refused end
local rev = state_apply(KEYS[1], KEYS[2], 4, n, size)
return {'ok', rev, redis.call('HGETALL', KEYS[2])}

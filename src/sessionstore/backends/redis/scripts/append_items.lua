-- Append items and apply a state change: one write, all or nothing.
-- ARGV[4]: '1' if the state changes (which bumps its revision even when
-- no key changes), ARGV[5]: the expected revision or '', ARGV[6]: the
-- largest state in bytes, ARGV[7]: the number n of changed keys, then n
-- pairs (key, JSON text or ''), then pairs (item id, stored item).
-- Returns {'ok', update time (false if nothing was written), revision},
-- or a refusal of state_check.
local n = tonumber(ARGV[7])
local size, refused = state_check(KEYS[1], KEYS[7], ARGV[5], ARGV[6], 8, n)
if refused then return refused end
local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
if ARGV[4] == '1' then rev = state_apply(KEYS[1], KEYS[7], 8, n, size) end
local first = 8 + 2 * n
local count = (#ARGV - first + 1) / 2
if count == 0 and ARGV[4] ~= '1' then return {'ok', false, rev} end
local seq = redis.call('HINCRBY', KEYS[1], 'iseq', count) - count
-- unpack() is bounded by the Lua stack: write in slices of 500 items.
for i = first, #ARGV, 1000 do
  local scored, stored = {}, {}
  for j = i, math.min(i + 998, #ARGV - 1), 2 do
    seq = seq + 1
    scored[#scored + 1] = string.format('%d', seq)
    scored[#scored + 1] = ARGV[j]
    stored[#stored + 1] = ARGV[j]
    stored[#stored + 1] = ARGV[j + 1]
  end
  redis.call('ZADD', KEYS[5], unpack(scored))
  redis.call('HSET', KEYS[6], unpack(stored))
end
return {'ok', touch(), rev}

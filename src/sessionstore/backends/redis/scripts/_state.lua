-- Shared by every script that changes a state; prepended by scripts.py.
-- A state is a hash of key -> JSON text plus 'rev' (its revision) and
-- 'ssize' (its size: the bytes of every key and value) in a meta hash. The
-- JSON is opaque text here: cjson would lose -0.0, big ints and key order.
-- A change is ARGV[first .. first + 2n - 1]: n pairs (key, JSON text), the
-- text '' removing the key (no JSON text is empty). Lua's # counts bytes.

-- Check a change before anything is written. Returns the state's size after
-- it, or nil and a refusal: {'conflict', revision} when `expected` ('' for
-- none) is not the revision, {'too_big', size} when over `max_bytes`.
local function state_check(meta, values, expected, max_bytes, first, n)
  local rev = redis.call('HGET', meta, 'rev') or '0'
  if expected ~= '' and expected ~= rev then return nil, {'conflict', rev} end
  local size = tonumber(redis.call('HGET', meta, 'ssize') or '0')
  for i = first, first + 2 * n - 1, 2 do
    local key, value = ARGV[i], ARGV[i + 1]
    local old = redis.call('HSTRLEN', values, key)
    if old > 0 then size = size - #key - old end
    if value ~= '' then size = size + #key + #value end
  end
  if size > tonumber(max_bytes) then return nil, {'too_big', size} end
  return size
end

-- Apply a change state_check allowed; return the new revision as text (a Lua
-- number is a double: past 2**53 it would not be exact).
local function state_apply(meta, values, first, n, size)
  for i = first, first + 2 * n - 1, 2 do
    if ARGV[i + 1] == '' then
      redis.call('HDEL', values, ARGV[i])
    else
      redis.call('HSET', values, ARGV[i], ARGV[i + 1])
    end
  end
  redis.call('HSET', meta, 'ssize', string.format('%d', size))
  redis.call('HINCRBY', meta, 'rev', 1)
  return redis.call('HGET', meta, 'rev')
end

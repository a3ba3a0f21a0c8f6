-- Shared by every session write script; prepended to each by scripts.py.
-- KEYS[1..SESSION_KEYS]: the session's keys, one hash tag, in the order of
-- layout.SessionKeys.session: meta, order, entries, traces, item_order,
-- items, state, trace_ids. KEYS[SESSION_KEYS + 1], standalone only: the
-- user's index, updated in the same script. On a Cluster the index lives in
-- another slot; the caller updates it after.
-- ARGV[1]: ttl in milliseconds or "" (keep forever), ARGV[2]: now in
-- microseconds since the epoch, ARGV[3]: the session id (the index member).
-- Times stay strings: Lua numbers print with 14 digits and would round them.
local SESSION_KEYS = 8
local INDEX = KEYS[SESSION_KEYS + 1]

-- A write sets the expiry of every key of the session to this store's ttl
-- (or makes them permanent when it has none).
local function expire_all()
  for i = 1, SESSION_KEYS do
    if ARGV[1] == '' then
      redis.call('PERSIST', KEYS[i])
    else
      redis.call('PEXPIRE', KEYS[i], ARGV[1])
    end
  end
end

-- Place session `id` in the user index `index` at `score`; mode 'LT' only
-- moves it forward in time. The index outlives every session it lists: its
-- expiry (`ttl` in ms, '' for none) is only ever extended, or removed by a
-- store that keeps forever. index_add.lua calls it on its own in a Cluster.
local function index_add(index, ttl, id, score, mode)
  local fresh = redis.call('EXISTS', index) == 0
  if mode == 'LT' then
    redis.call('ZADD', index, 'LT', score, id)
  else
    redis.call('ZADD', index, score, id)
  end
  if ttl == '' then
    redis.call('PERSIST', index)
  else
    local left = redis.call('PTTL', index)
    if fresh or (left >= 0 and left < tonumber(ttl)) then
      redis.call('PEXPIRE', index, ttl)
    end
  end
end

-- Place this script's session in the user's index (standalone only: in a
-- Cluster the index has its own slot and INDEX is absent).
local function index_session(score, mode)
  if INDEX then index_add(INDEX, ARGV[1], ARGV[3], score, mode) end
end

-- Mark a write: set created once, slide updated (never backwards) and expiry.
local function touch()
  local now = ARGV[2]
  local old = redis.call('HGET', KEYS[1], 'updated')
  if old and tonumber(old) > tonumber(now) then now = old end
  redis.call('HSETNX', KEYS[1], 'created', ARGV[2])
  redis.call('HSET', KEYS[1], 'updated', now)
  index_session('-' .. now, 'LT')
  expire_all()
  return now
end

-- A session exists while it holds an entry, a trace step, a graph context,
-- an item, or a state that was ever updated ('rev' in meta).
local function is_empty()
  return redis.call('ZCARD', KEYS[2]) == 0
    and redis.call('LLEN', KEYS[4]) == 0
    and redis.call('HEXISTS', KEYS[1], 'gc') == 0
    and redis.call('ZCARD', KEYS[5]) == 0
    and redis.call('HEXISTS', KEYS[1], 'rev') == 0
    and redis.call('EXISTS', KEYS[7]) == 0
end

-- Delete the session; return its last update time (false if it did not exist).
local function drop()
  local updated = redis.call('HGET', KEYS[1], 'updated')
  redis.call('DEL', unpack(KEYS, 1, SESSION_KEYS))
  if INDEX then redis.call('ZREM', INDEX, ARGV[3]) end
  return updated
end

-- After removing something: end the session if nothing is left, else mark
-- the write. Returns {0, last update time} or {1, update time}.
local function removed()
  if is_empty() then return {0, drop()} end
  return {1, touch()}
end

-- Return the trace id a stored step holds (nil if it cannot be read). A step
-- starts with its id, and a JSON string never holds '","' (its quotes are
-- escaped), so the first '","origin_function":' ends it; the rest of the step
-- is never decoded.
local function trace_id_of(step)
  local start = '{"trace_id":"'
  if step:sub(1, #start) ~= start then return nil end
  local stop = step:find('","origin_function":', #start, true)
  if not stop then return nil end
  local ok, id = pcall(cjson.decode, step:sub(#start, stop))
  if ok and type(id) == 'string' then return id end
  return nil
end

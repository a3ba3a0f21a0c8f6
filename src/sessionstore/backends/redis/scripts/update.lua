-- Merge changed fields into one entry. ARGV[4]: qa_id, ARGV[5]: a JSON object
-- of changed fields; the free-form JSON fields are JSON texts (strings to cjson), so the
-- merge never re-encodes their numbers. Returns the update time, or false if absent.
local stored = redis.call('HGET', KEYS[3], ARGV[4])
if not stored then return false end
local entry = cjson.decode(stored)
for name, value in pairs(cjson.decode(ARGV[5])) do entry[name] = value end
redis.call('HSET', KEYS[3], ARGV[4], cjson.encode(entry))
return touch()

-- Cluster only: record a session write in the user's index (its own slot).
-- KEYS[1]: the index. ARGV[1]: ttl in ms or "", ARGV[2]: session id,
-- ARGV[3]: -updated, ARGV[4]: "LT" to only move forward in time, "" to set.
-- index_add() is in _session.lua, prepended to this script.
index_add(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1

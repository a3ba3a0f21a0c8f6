-- Append a trace step. ARGV[4]: the stored step. Returns the update time.
redis.call('RPUSH', KEYS[4], ARGV[4])
return touch()

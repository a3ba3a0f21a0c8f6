-- Overwrite the graph context. ARGV[4]: the context. Returns the update time.
redis.call('HSET', KEYS[1], 'gc', ARGV[4])
return touch()

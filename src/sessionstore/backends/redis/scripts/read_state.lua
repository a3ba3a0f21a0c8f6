-- Read a state in one consistent step: a session's (KEYS[1]: its meta,
-- KEYS[2]: its state) or a user's or app's (their meta and values).
-- Returns {revision, the state as flat pairs}.
return {redis.call('HGET', KEYS[1], 'rev') or '0', redis.call('HGETALL', KEYS[2])}

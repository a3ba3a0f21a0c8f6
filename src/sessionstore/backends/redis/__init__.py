"""``redis://``, ``rediss://``, ``valkey://``, ``valkeys://``, ``redis+cluster://``.

Redis or Valkey, standalone or Cluster, through redis-py's asyncio client
(extra ``redis``)::

    store.py     RedisStore: the contract's steps
    client.py    RedisConnection: the client the store has, and the one
                 translator of redis-py's exceptions
    layout.py    the key names
    codec.py     what the keys hold: entries, changes, trace steps
    scripts.py   the Lua scripts in scripts/, called by SHA
    lock.py      RedisLockBackend: improve_lock on the same server
"""

from sessionstore.backends.redis.store import RedisStore

__all__ = ["RedisStore"]

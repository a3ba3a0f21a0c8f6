"""``postgresql://``, ``mysql://``, ``mariadb://``: the SQL backend.

:class:`SQLStore` is the store (``store.py``). Importing this package imports
neither SQLAlchemy nor a driver: a store loads its dialect when it is built,
and a missing extra is reported then, with the ``pip install`` that adds it.
"""

from sessionstore.backends.sql.store import SQLStore

__all__ = ["SQLStore"]

"""The SQLite backend (``sqlite:///path.db``): the embedded default.

``store.py`` holds the contract's steps; the store has a ``connection.py``
(worker thread, error translation) and ``transactions.py`` (write
transactions keeping the ``sessions`` row current). ``schema.py`` holds the
tables and migrations, ``codec.py`` how rows hold entries, ``statements.py``
every statement sent, ``item_log.py`` the item and session state writes,
``state_rows.py`` the state merge and users' and apps' states, and
``lock.py`` the improve locks.
"""

from sessionstore.backends.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]

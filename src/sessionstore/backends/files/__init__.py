"""``file://``: conversation memory as plain files; see :class:`FileStore`.

Modules: ``store`` (the steps of the contract), ``root`` (the root directory:
worker threads, error translation, marker, prune, sweep), ``session`` (one
session directory and its commit protocol), ``repair`` (after a crash),
``replay`` (reading ``entries.jsonl``), ``item_log`` (reading
``items.jsonl``), ``item_steps`` (the item and session state steps),
``scoped`` (users' and apps' states), ``codec`` (what each line holds),
``log`` (JSON Lines files), ``state`` (``state.json``), ``layout`` (names and
the ``flock``), ``directory`` (opening names without following links),
``lock`` (``improve_lock``).
"""

from sessionstore.backends.files.store import FileStore

__all__ = ["FileStore"]

"""Blocking sessionstore for code without an event loop: Flask, Django, scripts, Celery.

::

    from sessionstore.sync import SessionManager, open_store

    with open_store("sqlite:///memory.db") as store:
        qa_id = store.create_qa_entry("chat-1", "alice", "Hi?", "Hello!")
        history = SessionManager(store).load_history_messages("chat-1", "alice")

The thread/loop rule: each blocking store runs its async store in an event
loop of its own, in a daemon thread, and every call waits for its result. So
one store can be shared by every thread of a process, and works whatever
event loops its callers run; a call from async code blocks that code's loop
while it waits (await the async store there instead). A store created
before a fork refuses calls in the child: open one per process. See
docs/sync.md.
"""

from sessionstore.sync.loop import CLOSE_TIMEOUT
from sessionstore.sync.manager import SessionManager
from sessionstore.sync.store import SessionStore, open_store

__all__ = ["CLOSE_TIMEOUT", "SessionManager", "SessionStore", "open_store"]

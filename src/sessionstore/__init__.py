"""sessionstore: durable, concurrent conversation memory for LLM agents and RAG.

Open a store by URL and use it as an async context manager::

    async with open_store("sqlite:///memory.db") as store:
        qa_id = await store.create_qa_entry("chat-1", "alice", "Hi?", "Hello!")
"""

from sessionstore.errors import (
    ConflictError,
    InvalidParameterError,
    MissingDependencyError,
    NotFoundError,
    SessionError,
    StoreError,
    StoreUnavailableError,
)
from sessionstore.llm import LLM, OpenAICompatibleLLM
from sessionstore.manager import SessionManager
from sessionstore.models import (
    SessionContext,
    SessionInfo,
    SessionItem,
    SessionPage,
    SessionQAEntry,
    SessionQAUpdate,
    SessionState,
    SessionTraceStep,
    TurnResult,
    UsedGraphElementIds,
    UserInfo,
)
from sessionstore.store import ALL_USERS, SessionStore
from sessionstore.urls import default_store_url, open_store, register_backend

__all__ = [
    "ALL_USERS",
    "LLM",
    "ConflictError",
    "InvalidParameterError",
    "MissingDependencyError",
    "NotFoundError",
    "OpenAICompatibleLLM",
    "SessionContext",
    "SessionError",
    "SessionInfo",
    "SessionItem",
    "SessionManager",
    "SessionPage",
    "SessionQAEntry",
    "SessionQAUpdate",
    "SessionState",
    "SessionStore",
    "SessionTraceStep",
    "StoreError",
    "StoreUnavailableError",
    "TurnResult",
    "UsedGraphElementIds",
    "UserInfo",
    "default_store_url",
    "open_store",
    "register_backend",
]

# The one place the version is written: the build reads it (tool.hatch.version in pyproject.toml).
__version__ = "0.1.0"

"""The optional extras, in one table, and the one way to import what they install.

``import sessionstore`` imports none of them: a backend, the CLI or an
integration calls :func:`require` when it is first used, and a missing package
raises :class:`MissingDependencyError` with the exact ``pip install``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Final

from sessionstore.errors import MissingDependencyError

__all__ = ["EXTRAS", "require"]

EXTRAS: Final[dict[str, tuple[str, ...]]] = {
    "redis": ("redis",),
    "postgres": ("sqlalchemy", "greenlet", "asyncpg"),
    "mysql": ("sqlalchemy", "greenlet", "asyncmy"),
    "cli": ("typer", "rich"),
    "otel": ("opentelemetry",),
    "openai-agents": ("agents",),
    "adk": ("google.adk",),
    "llama-index": ("llama_index.core",),
    "pydantic-ai": ("pydantic_ai",),
    "langchain": ("langchain_core",),
}
"""Each extra of ``pyproject.toml`` and the top-level packages it installs."""


def require(module: str, extra: str) -> ModuleType:
    """Import ``module``, which ``extra`` installs, or say how to install it.

    Raises:
        MissingDependencyError: ``module`` or a package it needs is missing.

    """
    if extra not in EXTRAS:
        raise KeyError(f"{extra!r} is not an extra of sessionstore; known: {sorted(EXTRAS)}")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = (exc.name or module).split(".", maxsplit=1)[0]
        raise MissingDependencyError(missing, extra) from exc

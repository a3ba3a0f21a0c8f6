"""How a statement travels to PostgreSQL: asyncpg's ``$n`` parameters, on a bare connection.

Shared by the dialect (``postgres.py``) and its item log and state writes
(``postgres_items.py``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from sessionstore.backends.sql.engine import bare
from sessionstore.backends.sql.statements import BIND

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["How", "Positional", "send"]

How = Literal["rows", "value", "count"]
"""What :func:`send` returns: all rows, the first value, or the rows changed."""


class Positional:
    """A statement with asyncpg's ``$n`` parameters, and the names they stand for."""

    def __init__(self, sql: str) -> None:
        self.names: list[str] = []

        def number(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in self.names:
                self.names.append(name)
            return f"${self.names.index(name) + 1}"

        self.sql: str = BIND.sub(number, sql)

    def args(self, params: Mapping[str, Any]) -> list[Any]:
        """Return the values of ``params`` in the order of the ``$n`` parameters."""
        return [params[name] for name in self.names]


async def send(
    engine: AsyncEngine, statement: Positional, params: Mapping[str, Any], how: How
) -> Any:
    """Run one statement on a bare asyncpg connection, outside any transaction.

    ``how`` is ``rows`` (all rows), ``value`` (first column of the first row
    or ``None``) or ``count`` (rows changed).
    """
    args = statement.args(params)
    async with bare(engine, statement.sql) as conn:
        if how == "rows":
            return await conn.fetch(statement.sql, *args)
        if how == "value":
            return await conn.fetchval(statement.sql, *args)
        status: str = await conn.execute(statement.sql, *args)
        return int(status.rsplit(" ", 1)[-1])

"""How statements travel to MySQL/MariaDB: one multi-statement batch per round trip.

Shared by the dialect (``mysql.py``) and its item log and state writes
(``mysql_items.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

from asyncmy.cursors import DictCursor

from sessionstore.backends.sql.engine import bare
from sessionstore.backends.sql.packet import check_packet
from sessionstore.backends.sql.statements import BIND

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

__all__ = ["BEGIN", "Batch", "rollback", "run", "send"]

BEGIN: Final = ("SET TRANSACTION ISOLATION LEVEL READ COMMITTED", "START TRANSACTION")
"""What starts every write's transaction."""


class Batch:
    """Statements sent to MySQL/MariaDB as one multi-statement query (one round trip).

    ``sql`` uses the driver's ``%(name)s`` parameters; ``result`` is the index
    of the statement whose outcome the caller reads (its rows, or its row
    count when it returns none).
    """

    def __init__(self, statements: list[str], result: int = -1) -> None:
        joined = ";\n".join(statements)
        self.sql = BIND.sub(r"%(\1)s", joined.replace("%", "%%"))
        self.result = result if result >= 0 else len(statements) + result


async def rollback(conn: Any) -> None:
    """Roll back the transaction a failed batch left open on ``conn``."""
    await conn.rollback()


async def run(conn: Any, batch: Batch, params: Mapping[str, Any], packet: int | None = None) -> Any:
    """Run a batch on an asyncmy connection the caller holds: one round trip.

    Returns the rows (as dicts) of the statement ``batch.result`` names, or
    its row count when it returns none.

    Raises:
        InvalidParameterError: the batch with its values is over ``packet``
            bytes; nothing was sent.

    """
    cursor = conn.cursor(DictCursor)
    try:
        # The values go in here, once; execute() then sends the text as it is.
        query = cursor.mogrify(batch.sql, params)
        check_packet(query, packet)
        await cursor.execute(query)
        index, outcome = 0, None
        while True:
            if index == batch.result:
                outcome = await cursor.fetchall() if cursor.description else cursor.rowcount
            if not await cursor.nextset():
                return outcome
            index += 1
    finally:
        await cursor.close()


async def send(
    engine: AsyncEngine, batch: Batch, params: Mapping[str, Any], packet: int | None = None
) -> Any:
    """Run a batch on a pooled connection (see :func:`run`).

    On an error the open transaction is rolled back before the error is raised.

    Raises:
        InvalidParameterError: the batch with its values is over ``packet``
            bytes; nothing was sent.

    """
    async with bare(engine, batch.sql, recover=rollback) as conn:
        return await run(conn, batch, params, packet)

"""MySQL/MariaDB's packet limit: what one statement may weigh, values included.

A statement travels to the server as one packet, with its values escaped into
its text, and the server refuses (by dropping the connection) one larger than
its ``max_allowed_packet``. The store reads that limit when it opens; these
functions say what fits before anything is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from sessionstore.errors import InvalidParameterError

__all__ = ["STATEMENT_ROOM", "check_packet", "largest_field", "most_bytes"]

STATEMENT_ROOM: Final = 64 * 1024
"""Bytes of a write's packet kept for its SQL, keys and small fields, besides one large field."""


def largest_field(packet: int) -> int:
    """Return the largest text field a write always carries within ``packet`` bytes.

    Escaping may double a value (each quote, backslash, NUL, newline), and
    :data:`STATEMENT_ROOM` is kept for the rest of the statement.
    """
    return max(1, (packet - STATEMENT_ROOM) // 2)


def most_bytes(statement: str, row: Any) -> int:
    """Return a bound on the bytes of ``statement`` with ``row``'s values escaped into it.

    A character takes at most 4 bytes in UTF-8, and escaping at most doubles
    a value; any value but a string takes at most 32 characters.
    """
    values = row.values() if isinstance(row, Mapping) else row
    strings = sum(len(v) for v in values if isinstance(v, str | bytes))
    return 4 * len(statement) + 8 * strings + 34 * len(values)


def check_packet(query: str, packet: int | None) -> None:
    """Refuse a statement the server would refuse: one over its ``max_allowed_packet``.

    Args:
        query: the statement with its values in it, as the driver sends it.
        packet: the server's ``max_allowed_packet`` (``None``: not read yet).

    Raises:
        InvalidParameterError: the statement does not fit in one packet.

    """
    if packet is None or 4 * len(query) < packet:  # UTF-8 takes at most 4 bytes a character
        return
    # Binary keys appear as surrogate escapes, sent as the bytes they stand for.
    size = len(query.encode("utf-8", "surrogateescape")) + 1  # + the command byte
    if size > packet:
        raise InvalidParameterError(
            f"this write is {size} bytes as the server receives it, over its "
            f"max_allowed_packet of {packet} bytes; send smaller fields, or raise "
            "max_allowed_packet on the server"
        )

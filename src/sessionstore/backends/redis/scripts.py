"""The Redis backend's Lua scripts: loaded from ``scripts/``, called by SHA.

Each script is sent once per server (``EVALSHA``); when a server does not know
it (``NOSCRIPT``: restarted, failed over, ``SCRIPT FLUSH``) it is sent whole
with ``EVAL``, which also caches it there. Write scripts are prefixed with
``_session.lua``, the helpers they share.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

__all__ = ["LuaScript", "run_script", "script"]

_WITH_HELPERS: Final = frozenset(
    {
        "append",
        "index_add",
        "update",
        "delete_entry",
        "delete_session",
        "set_graph_context",
        "save_trace",
        "write_session",
    }
)


@dataclass(frozen=True, slots=True)
class LuaScript:
    """A script's source text and the SHA1 the server knows it by."""

    name: str
    source: str
    sha: str


def _read(name: str) -> str:
    folder = resources.files("sessionstore.backends.redis").joinpath("scripts")
    return folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")


@cache
def script(name: str) -> LuaScript:
    """Return the script ``scripts/<name>.lua``, with the shared helpers if it writes."""
    source = _read(name)
    if name in _WITH_HELPERS:
        source = _read("_session") + "\n" + source
    return LuaScript(name, source, hashlib.sha1(source.encode()).hexdigest())  # noqa: S324


async def run_script(
    client: Any,
    noscript: type[Exception],
    name: str,
    keys: list[str],
    args: list[Any],
) -> Any:
    """Run a script by SHA on ``client``, sending its source if the server lacks it.

    Args:
        client: a redis-py asyncio client (standalone or Cluster).
        noscript: the client's ``NoScriptError`` class.
        name: the script's file name without ``.lua``.
        keys: the keys the script touches (all in one slot on a Cluster).
        args: the script's ``ARGV``.

    Raises:
        redis.exceptions.RedisError: as the client raises it; the caller
            translates it.

    """
    lua = script(name)
    try:
        return await client.evalsha(lua.sha, len(keys), *keys, *args)
    except noscript:
        pass
    return await client.eval(lua.source, len(keys), *keys, *args)

"""The Redis backend's Lua scripts: loaded from ``scripts/``, called by SHA.

Each script is sent once per server (``EVALSHA``); when a server does not know
it (``NOSCRIPT``: restarted, failed over, ``SCRIPT FLUSH``) it is sent whole
with ``EVAL``, which also caches it there. Session write scripts are prefixed
with ``_session.lua``, the helpers they share, and the scripts that change a
state with ``_state.lua``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Final

__all__ = ["LuaScript", "run_script", "script"]

_SESSION: Final = ("_session",)
_HELPERS: Final[dict[str, tuple[str, ...]]] = {
    "append": _SESSION,
    "index_add": _SESSION,
    "update": _SESSION,
    "delete_entry": _SESSION,
    "delete_session": _SESSION,
    "set_graph_context": _SESSION,
    "save_trace": _SESSION,
    "write_session": _SESSION,
    "append_items": ("_session", "_state"),
    "pop_item": _SESSION,
    "delete_item": _SESSION,
    "clear_items": _SESSION,
    "update_state": ("_session", "_state"),
    "update_scoped_state": ("_state",),
}
"""The helper files each script is prefixed with, in order."""


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
    """Return the script ``scripts/<name>.lua``, prefixed with the helpers it uses."""
    source = "\n".join([*(_read(helper) for helper in _HELPERS.get(name, ())), _read(name)])
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

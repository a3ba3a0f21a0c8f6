"""Commands that count: ``stats`` (the whole store) and ``users`` (sessions per user)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import typer  # noqa: TC002 (Typer resolves the annotations at run time)
from rich.table import Table
from rich.text import Text

from sessionstore.cli.output import out_console, plain, print_json, terminal_safe
from sessionstore.cli.runtime import JsonOption, opened, run, state_of
from sessionstore.models import UserInfo
from sessionstore.store import SessionStore

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the counting commands to ``app``."""
    app.command(epilog="Example: sessionstore --store sqlite:///app.db stats --json")(stats)
    app.command(epilog="Example: sessionstore --store sqlite:///app.db users --json")(users)


def users(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the users that have sessions, with how many each has.

    The anonymous user (no --user) comes first, then the others by id.
    Reads each session's key once, not the sessions.
    """
    url = state_of(ctx).choice().url

    async def read() -> list[UserInfo]:
        async with opened(url, create=False) as store:
            return await store.list_users()

    found = run(read())
    if as_json:
        print_json(
            {"users": [{"user_id": u.user_id, "session_count": u.session_count} for u in found]}
        )
        return
    console = out_console()
    if not found:
        console.print(Text("No sessions in this store."))
        return
    table = Table(title="Users", title_justify="left")
    table.add_column("user")
    table.add_column("sessions", justify="right")
    for user in found:
        # Ids are quoted, so no id can pass for the anonymous user.
        name = (
            Text("anonymous (no --user)", style="italic")
            if user.user_id is None
            else plain(repr(user.user_id), keep_newlines=False)
        )
        table.add_row(name, f"{user.session_count:,}")
    console.print(table)
    total = sum(user.session_count for user in found)
    people = "user" if len(found) == 1 else "users"
    sessions = "session" if total == 1 else "sessions"
    console.print(Text(f"{len(found):,} {people}, {total:,} {sessions}", style="dim"))


def _bytes_on_disk(store: SessionStore) -> int | None:
    """Return the bytes a file-based store uses, or ``None`` when it cannot tell."""
    where = getattr(store, "path", None) or getattr(store, "root", None)
    if not isinstance(where, Path):
        return None
    if where.is_dir():
        return sum(f.stat().st_size for f in where.rglob("*") if f.is_file())
    files = [where, where.with_name(where.name + "-wal"), where.with_name(where.name + "-shm")]
    existing = [f for f in files if f.is_file()]
    return sum(f.stat().st_size for f in existing) if existing else None


def _size(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def stats(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Count sessions, users, entries, trace steps, items and session states in the store.

    Reads every session once. The size is given for stores kept in local
    files (SQLite, file://); other backends show "n/a".
    """
    choice = state_of(ctx).choice()

    async def count() -> dict[str, Any]:
        totals = {"sessions": 0, "entries": 0, "trace_steps": 0, "graph_contexts": 0}
        totals["entries_with_feedback"] = 0
        totals["items"] = totals["states"] = 0
        users: set[str | None] = set()
        async with opened(choice.url, create=False) as store:
            async for dump in store.export_sessions():
                users.add(dump["user_id"])
                totals["sessions"] += 1
                totals["entries"] += len(dump["entries"])
                totals["trace_steps"] += len(dump["trace_steps"])
                totals["graph_contexts"] += dump["graph_context"] is not None
                totals["entries_with_feedback"] += sum(
                    e["feedback_score"] is not None or e["feedback_text"] is not None
                    for e in dump["entries"]
                )
                totals["items"] += len(dump["items"])
                totals["states"] += dump["state"]["revision"] > 0
            size = await asyncio.to_thread(_bytes_on_disk, store)
        return {"store": choice.shown, "users": len(users), **totals, "size_bytes": size}

    result = run(count())
    if as_json:
        print_json(result)
        return
    table = Table(show_header=False)
    table.add_column("what")
    table.add_column("count", justify="right")
    for key, value in result.items():
        if key == "store":
            continue
        if key == "size_bytes":
            table.add_row("size on disk", "n/a" if value is None else _size(value))
        else:
            table.add_row(key.replace("_", " "), f"{value:,}")
    console = out_console()
    console.print(Text(terminal_safe(f"Store {result['store']}"), style="bold"), soft_wrap=True)
    console.print(table)

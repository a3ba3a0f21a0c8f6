"""Commands that read sessions: ``where``, ``ls``, ``show``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from sessionstore.cli.output import (
    out_console,
    plain,
    print_json,
    terminal_safe,
    user_label,
    when,
)
from sessionstore.cli.runtime import JsonOption, UserOption, opened, run, state_of
from sessionstore.errors import InvalidParameterError, MissingDependencyError, NotFoundError
from sessionstore.models import (
    SessionInfo,
    SessionItem,
    SessionQAEntry,
    SessionState,
    SessionTraceStep,
)
from sessionstore.store import SessionStore
from sessionstore.stored import entry_to_record, trace_to_record
from sessionstore.urls import open_store

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add the reading commands to ``app``."""
    app.command(epilog="Example: sessionstore --store redis://localhost:6379/0 where")(where)
    app.command("ls", epilog="Example: sessionstore ls --user alice --limit 10")(list_sessions)
    app.command(epilog="Example: sessionstore show chat-1 --user alice --last 5 --traces")(show)


def where(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """Print which store the commands use and why (credentials hidden).

    Nothing is opened or created: the store is only named.
    """
    choice = state_of(ctx).choice()
    problem: Exception | None = None
    try:
        backend: str | None = type(open_store(choice.url)).__name__
    except (InvalidParameterError, MissingDependencyError) as exc:
        backend, problem = None, exc
    if as_json:
        print_json({"url": choice.shown, "reason": choice.reason, "backend": backend})
    else:
        console = out_console()
        console.print(Text(terminal_safe(choice.shown), style="bold"), soft_wrap=True)
        console.print(Text(f"{choice.reason}; backend {backend or 'unusable'}"), soft_wrap=True)
        if backend == "MemoryStore":
            console.print(Text("memory:// is private to each command: it starts empty every time."))
    if problem is not None:
        raise problem


def _session_row(info: SessionInfo) -> dict[str, Any]:
    return {
        "session_id": info.session_id,
        "user_id": info.user_id,
        "created_at": info.created_at.isoformat(),
        "updated_at": info.updated_at.isoformat(),
        "qa_count": info.qa_count,
        "item_count": info.item_count,
    }


def list_sessions(
    ctx: typer.Context,
    user: UserOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many.")] = 50,
    as_json: JsonOption = False,
) -> None:
    """List one user's sessions, most recently written first."""
    url = state_of(ctx).choice().url

    async def read() -> tuple[list[SessionInfo], bool]:
        found: list[SessionInfo] = []
        cursor: str | None = None
        async with opened(url, create=False) as store:
            while True:
                page = await store.list_sessions(
                    user, limit=min(limit - len(found), 1000), cursor=cursor
                )
                found.extend(page.items)
                if page.next_cursor is None:
                    return found, False
                if len(found) >= limit:
                    return found, True
                cursor = page.next_cursor

    infos, more = run(read())
    if as_json:
        print_json(
            {"user_id": user, "sessions": [_session_row(i) for i in infos], "truncated": more}
        )
        return
    console = out_console()
    if not infos:
        console.print(Text(f"No sessions for {user_label(user)}."))
        return
    table = Table(title=Text(f"Sessions of {user_label(user)}"), title_justify="left")
    table.add_column("session")
    table.add_column("entries", justify="right")
    table.add_column("items", justify="right")
    table.add_column("created (UTC)")
    table.add_column("last activity (UTC)")
    for info in infos:
        table.add_row(
            plain(info.session_id, keep_newlines=False),
            str(info.qa_count),
            str(info.item_count),
            when(info.created_at),
            when(info.updated_at),
        )
    console.print(table)
    if more:
        console.print(Text(f"More sessions exist; raise --limit (now {limit}).", style="dim"))


@dataclass(frozen=True)
class _Shown:
    """What ``show`` read of one session."""

    count: int
    entries: list[SessionQAEntry]
    graph_context: str | None
    steps: list[SessionTraceStep]
    item_count: int
    items: list[SessionItem]
    state: SessionState


async def _read_session(
    store: SessionStore,
    session_id: str,
    user: str | None,
    last: int | None,
    *,
    traces: bool,
    items: bool,
) -> _Shown:
    count = await store.count_qa_entries(session_id, user)
    if last is None:
        entries = await store.get_all_qa_entries(session_id, user)
    else:
        entries = await store.get_latest_qa_entries(session_id, user, last)
    graph_context = await store.get_graph_context(session_id, user)
    steps = await store.read_trace_steps(session_id, user) if traces else []
    item_count = await store.count_items(session_id, user)
    state = await store.get_state(session_id, user)
    exists = count or item_count or state.revision or graph_context is not None or steps
    if not exists and not await store.read_trace_steps(session_id, user, 1):
        raise NotFoundError(
            f"no session {session_id!r} of {user_label(user)} in {store.describe()}"
            + ("" if user is not None else " (another user's session needs --user)")
        )
    shown_items = await store.get_items(session_id, user) if items else []
    return _Shown(count, entries, graph_context, steps, item_count, shown_items, state)


def show(
    ctx: typer.Context,
    *,
    session_id: Annotated[str, typer.Argument(metavar="SESSION", help="The session id.")],
    user: UserOption = None,
    last: Annotated[
        int | None, typer.Option("--last", min=0, help="Only the newest N entries.")
    ] = None,
    traces: Annotated[bool, typer.Option("--traces", help="Also show the trace steps.")] = False,
    items: Annotated[
        bool, typer.Option("--items", help="Also show the item log and the state's data.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show a session: its entries (oldest first), graph context, item count and state revision.

    --traces adds the trace steps, --items the items and the state's data.
    """
    url = state_of(ctx).choice().url

    async def read() -> _Shown:
        async with opened(url, create=False) as store:
            return await _read_session(store, session_id, user, last, traces=traces, items=items)

    read_back = run(read())
    count, entries, state = read_back.count, read_back.entries, read_back.state
    if as_json:
        shown: dict[str, Any] = {
            "session_id": session_id,
            "user_id": user,
            "qa_count": count,
            "item_count": read_back.item_count,
            "state_revision": state.revision,
            "graph_context": read_back.graph_context,
            "entries": [entry_to_record(e) for e in entries],
        }
        if traces:
            shown["trace_steps"] = [trace_to_record(s) for s in read_back.steps]
        if items:
            shown["items"] = [_item_row(item) for item in read_back.items]
            shown["state"] = {"data": state.data, "revision": state.revision}
        print_json(shown)
        return
    console = out_console()
    heading = f"Session {session_id!r} of {user_label(user)}: {count} {_entries(count)}"
    if len(entries) < count:
        heading += f", showing the last {len(entries)}"
    heading += f"; {read_back.item_count} {_items(read_back.item_count)}"
    heading += f", state revision {state.revision}"
    console.print(Text(heading, style="bold"))
    if read_back.graph_context is not None:
        console.print(Text.assemble(("graph context: ", "cyan"), plain(read_back.graph_context)))
    for number, entry in enumerate(entries, start=count - len(entries) + 1):
        _print_entry(number, entry)
    if traces:
        _print_traces(read_back.steps)
    if items:
        _print_items(read_back.items, state)


def _item_row(item: SessionItem) -> dict[str, Any]:
    return {"id": item.id, "data": item.data, "created_at": item.created_at.isoformat()}


def _items(count: int) -> str:
    return "item" if count == 1 else "items"


def _print_items(items: list[SessionItem], state: SessionState) -> None:
    console = out_console()
    if not items:
        console.print(Text("No items.", style="dim"))
    for number, item in enumerate(items, start=1):
        data = json.dumps(item.data, ensure_ascii=False)
        console.print(
            Text.assemble((f"item #{number}  ", "cyan"), plain(f"{when(item.created_at)}  {data}"))
        )
    data = json.dumps(state.data, ensure_ascii=False)
    console.print(Text.assemble((f"state (revision {state.revision}): ", "magenta"), plain(data)))


def _entries(count: int) -> str:
    return "entry" if count == 1 else "entries"


def _print_entry(number: int, entry: SessionQAEntry) -> None:
    console = out_console()
    # A rule's title is cut to the terminal's width; the id must stay whole to be copied.
    console.rule(style="dim")
    console.print(
        Text.assemble((f"#{number}", "bold"), f"  {when(entry.created_at)}  ", plain(entry.id)),
        soft_wrap=True,
    )
    console.print(Text.assemble(("Q: ", "bold green"), plain(entry.question)))
    console.print(Text.assemble(("A: ", "bold blue"), plain(entry.answer)))
    if entry.context is not None:
        console.print(Text.assemble(("context: ", "cyan"), plain(entry.context)))
    if entry.feedback_score is not None or entry.feedback_text is not None:
        score = "-" if entry.feedback_score is None else f"{entry.feedback_score}/5"
        console.print(
            Text.assemble(("feedback: ", "magenta"), f"{score} ", plain(entry.feedback_text))
        )
    graph = entry.used_graph_element_ids
    if graph is not None:
        ids = f"nodes {', '.join(graph.node_ids) or '-'}; edges {', '.join(graph.edge_ids) or '-'}"
        console.print(Text.assemble(("graph elements: ", "cyan"), plain(ids)))
    if entry.metadata is not None:
        metadata = json.dumps(entry.metadata, ensure_ascii=False)
        console.print(Text.assemble(("metadata: ", "dim"), plain(metadata)))


def _print_traces(steps: list[SessionTraceStep]) -> None:
    console = out_console()
    if not steps:
        console.print(Text("No trace steps.", style="dim"))
        return
    table = Table(title="Trace steps", title_justify="left")
    for name in ("#", "when (UTC)", "function", "status", "feedback"):
        table.add_column(name)
    for number, step in enumerate(steps, start=1):
        table.add_row(
            str(number),
            when(step.created_at),
            plain(step.origin_function),
            plain(step.status),
            plain(step.session_feedback or step.error_message),
        )
    console.print(table)

"""``sessionstore demo``: record a short conversation, then show the prompt a model gets."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from shlex import quote
from typing import Annotated

import typer
from rich.panel import Panel
from rich.text import Text

from sessionstore.cli.output import out_console, plain, terminal_safe
from sessionstore.cli.runtime import opened, run, state_of
from sessionstore.manager import SessionManager
from sessionstore.models import SessionContext, SessionQAUpdate, UsedGraphElementIds
from sessionstore.urls import redact_url

__all__ = ["register"]

_TURNS = [
    (
        "Which backends can keep my agent's memory?",
        "Memory, SQLite (the default), plain files, Redis or Valkey, PostgreSQL and "
        "MySQL or MariaDB, each chosen by a URL.",
        "README: the table of backends",
    ),
    (
        "Which one should I use on a single machine?",
        "SQLite: it is embedded, needs no server and is safe for several processes.",
        "docs/backends/sqlite.md: WAL and BEGIN IMMEDIATE",
    ),
    (
        "And when several hosts share the memory?",
        "Redis (also as a Cluster) or PostgreSQL carry sessions across hosts.",
        None,
    ),
]
_GRAPH_CONTEXT = (
    "SQLite --is_default_backend_of--> sessionstore\n"
    "Redis --shares--> hosts\n"
    "PostgreSQL --shares--> hosts"
)


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command(epilog="Example: sessionstore --store sqlite:///demo.db demo")(demo)


async def _record(url: str, session_id: str, user: str) -> tuple[SessionContext, list[str], str]:
    async with opened(url) as store:
        manager = SessionManager(store, default_session_id=session_id)
        await store.delete_session(session_id, user)
        qa_ids = []
        for question, answer, context in _TURNS:
            qa_ids.append(await manager.save_qa(question, answer, user_id=user, context=context))
        await manager.add_feedback(qa_ids[1], user_id=user, score=5, text="Clear and short.")
        used = UsedGraphElementIds(node_ids=["redis", "postgresql"], edge_ids=["shares"])
        await manager.update_qa(
            qa_ids[2], SessionQAUpdate(used_graph_element_ids=used), user_id=user
        )
        await manager.set_graph_context(_GRAPH_CONTEXT, user_id=user)
        await manager.add_agent_trace_step(
            origin_function="search_docs",
            status="success",
            user_id=user,
            memory_query="backends across hosts",
            method_params={"query": "backends across hosts", "top_k": 2},
            method_return_value=["redis.md", "postgresql.md"],
        )
        await manager.add_agent_trace_step(
            origin_function="send_summary_email",
            status="error",
            user_id=user,
            method_params={"to": "alice@example.com"},
            error_message="SMTP server timed out",
        )
        feedback = await manager.get_agent_trace_feedback(user_id=user)
        return await manager.build_context(user_id=user), feedback, store.describe()


def demo(
    ctx: typer.Context,
    session_id: Annotated[
        str, typer.Option("--session", help="The session to (re)write.")
    ] = "sessionstore-demo",
    user: Annotated[str, typer.Option("--user", "-u", help="Whose session.")] = "demo-user",
) -> None:
    """Record a short scripted conversation and print the history a model would get.

    The conversation has feedback, a graph context and two agent trace steps.
    Running it again replaces the demo session; nothing else is touched.
    """
    url = state_of(ctx).choice().url
    context, feedback, where = run(_record(url, session_id, user))
    console = out_console()
    console.print(
        Text(
            f"Recorded {len(_TURNS)} turns, 1 feedback, a graph context and 2 trace steps "
            f"in session {session_id!r} of user {user!r} at {terminal_safe(where)}."
        )
    )
    for line in feedback:
        console.print(Text.assemble(("trace: ", "cyan"), plain(line)))
    console.print(
        Panel(plain(context.formatted_history.rstrip("\n")), title="Prompt history", expand=False)
    )
    messages = Text("\n").join(
        Text.assemble((f"{m['role']}: ", "bold"), plain(m["content"])) for m in context.history
    )
    console.print(Panel(messages, title="The same turns as chat messages", expand=False))
    look = f"{_again(state_of(ctx).store_url)} show {quote(session_id)} --user {quote(user)}"
    # Not wrapped: the line is a command to copy as it is.
    console.print(Text(terminal_safe(f"Look closer: {look} --traces"), style="dim"), soft_wrap=True)


def _again(store_url: str | None) -> str:
    """Return how to run this command line again: the same program and ``--store``.

    The program as it was invoked (``python -m sessionstore.cli`` or the
    script's path), shortened to its name when PATH finds that very file. A
    ``--store`` URL with a password is shown redacted, as every output is.
    """
    script = sys.argv[0] if sys.argv else ""
    if Path(script).name == "__main__.py":
        program = f"{_shortest(sys.executable)} -m sessionstore.cli"
    elif Path(script).stem == "sessionstore":
        program = _shortest(script)
    else:  # run in process (tests), not from a command line
        program = "sessionstore"
    if store_url is None:
        return program
    return f"{program} --store {quote(redact_url(store_url))}"


def _shortest(program: str) -> str:
    """Return ``program``'s bare name if PATH finds this very file by it, else the path given."""
    name = Path(program).name
    found = shutil.which(name)
    if found is not None and os.path.abspath(found) == os.path.abspath(program):  # noqa: PTH100
        return name
    return quote(program)

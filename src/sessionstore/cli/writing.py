"""Commands that change a store: ``add``, ``feedback``, ``rm``, ``prune``, ``migrate``."""

from __future__ import annotations

import inspect
import sys
from typing import Annotated

import typer

from sessionstore.cli.output import say, user_label
from sessionstore.cli.runtime import CommandError, UserOption, opened, run, state_of
from sessionstore.errors import NotFoundError
from sessionstore.manager import SessionManager

__all__ = ["register"]

SessionArgument = Annotated[str, typer.Argument(metavar="SESSION", help="The session id.")]


def register(app: typer.Typer) -> None:
    """Add the writing commands to ``app``."""
    app.command(
        epilog='Example: sessionstore add chat-1 --user alice -q "Hi?" -a "Hello!" -c "docs"'
    )(add)
    app.command(epilog="Example: sessionstore feedback chat-1 <qa-id> --score 5 --text 'spot on'")(
        feedback
    )
    app.command(epilog="Example: sessionstore rm chat-1 --user alice")(rm)
    app.command(epilog="Example: sessionstore --store sqlite:///old.db prune --yes")(prune)
    app.command(epilog="Example: sessionstore --store postgresql://app@db/app migrate")(migrate)


def add(
    ctx: typer.Context,
    *,
    session_id: SessionArgument,
    question: Annotated[str, typer.Option("--question", "-q", help="The question.")],
    answer: Annotated[str, typer.Option("--answer", "-a", help="The answer.")],
    user: UserOption = None,
    context: Annotated[
        str | None, typer.Option("--context", "-c", help="The context the answer used.")
    ] = None,
) -> None:
    """Record one question and answer; print the new entry's id."""
    url = state_of(ctx).choice().url

    async def write() -> str:
        async with opened(url) as store:
            return await store.create_qa_entry(session_id, user, question, answer, context)

    typer.echo(run(write()))


def feedback(
    ctx: typer.Context,
    *,
    session_id: SessionArgument,
    qa_id: Annotated[str, typer.Argument(metavar="QA_ID", help="The entry's id.")],
    score: Annotated[int, typer.Option("--score", "-s", help="1 (bad) to 5 (good).")],
    text: Annotated[str | None, typer.Option("--text", "-t", help="A comment.")] = None,
    user: UserOption = None,
) -> None:
    """Set an entry's feedback score and text (a missing --text clears the text)."""
    url = state_of(ctx).choice().url

    async def write() -> bool:
        async with opened(url) as store:
            return await SessionManager(store).add_feedback(
                qa_id, session_id=session_id, user_id=user, text=text, score=score
            )

    if not run(write()):
        raise NotFoundError(f"no entry {qa_id!r} in session {session_id!r} of {user_label(user)}")
    say(f"Feedback {score}/5 saved on {qa_id}.")


def rm(ctx: typer.Context, session_id: SessionArgument, user: UserOption = None) -> None:
    """Delete a session: its entries, graph context, trace steps, items and state."""
    url = state_of(ctx).choice().url

    async def delete() -> bool:
        async with opened(url, create=False) as store:
            return await store.delete_session(session_id, user)

    if not run(delete()):
        raise NotFoundError(f"no session {session_id!r} of {user_label(user)}")
    say(f"Deleted session {session_id!r} of {user_label(user)}.")


def prune(
    ctx: typer.Context,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete every session of every user in this store (and nothing outside it)."""
    choice = state_of(ctx).choice()
    if not yes and not _confirmed(f"Delete every session of every user in {choice.shown}?"):
        raise CommandError("not confirmed, nothing deleted (--yes skips the question)")

    async def delete() -> None:
        async with opened(choice.url, create=False) as store:
            await store.prune()

    run(delete())
    say(f"Pruned {choice.shown}.")


def _confirmed(question: str) -> bool:
    try:
        answer = typer.confirm(question, err=True)
    except typer.Abort:
        answer = False
    if not sys.stdin.isatty():
        # The answer came from a pipe and was not echoed: end the prompt's line.
        typer.echo(err=True)
    return answer


def migrate(ctx: typer.Context) -> None:
    """Bring the store's schema up to date (SQL backends); others have nothing to do."""
    choice = state_of(ctx).choice()

    async def upgrade() -> bool:
        async with opened(choice.url) as store:
            step = getattr(store, "migrate", None)
            if step is None:
                return False
            result = step()
            if inspect.isawaitable(result):
                await result
            return True

    if run(upgrade()):
        say(f"Schema of {choice.shown} is up to date.")
    else:
        say(f"Nothing to migrate: {choice.shown} has no separate schema migration.")

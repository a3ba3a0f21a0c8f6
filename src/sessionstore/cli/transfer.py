"""Moving sessions: ``export`` (JSON Lines), ``import`` and ``copy`` between stores.

``import`` reads the whole file twice: first it checks every line and refuses
the file, importing nothing, if any line is malformed; then it imports. Each
session is written all or nothing and replaces a session with the same ids,
so running an import or a copy again never duplicates anything.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from sessionstore.cli.output import json_text, progress, say
from sessionstore.cli.runtime import (
    EXIT_BAD_INPUT,
    EXIT_STORE_FAILED,
    CommandError,
    opened,
    run,
    state_of,
)
from sessionstore.errors import InvalidParameterError, StoreError
from sessionstore.store import ALL_USERS, AllUsers, SessionStore
from sessionstore.urls import redact_url
from sessionstore.validation import MAX_JSON_DEPTH

__all__ = ["register"]

# Exports read from stdin stay in memory up to this size, then spill to a temp file.
_SPOOL_BYTES = 32 * 1024 * 1024

UsersOption = Annotated[
    str | None, typer.Option("--user", "-u", help="Only this user's sessions (default: all).")
]
AnonymousOption = Annotated[
    bool, typer.Option("--anonymous", help="Only the anonymous user's sessions.")
]


def register(app: typer.Typer) -> None:
    """Add the transfer commands to ``app``."""
    app.command(epilog="Example: sessionstore export --user alice -o alice.jsonl")(export)
    app.command(
        "import", epilog="Example: sessionstore --store sqlite:///new.db import alice.jsonl"
    )(import_file)
    app.command(epilog="Example: sessionstore copy --from sqlite:///app.db --to redis://localhost")(
        copy
    )


def _user_filter(user: str | None, anonymous: bool) -> str | AllUsers | None:
    if user is not None and anonymous:
        raise CommandError("give --user or --anonymous, not both")
    if anonymous:
        return None
    return ALL_USERS if user is None else user


def _line(dump: dict[str, Any]) -> bytes:
    return json_text(dump).encode() + b"\n"


def export(
    ctx: typer.Context,
    user: UsersOption = None,
    anonymous: AnonymousOption = False,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file, not stdout.")
    ] = None,
) -> None:
    """Write sessions as JSON Lines, one session per line (all users by default).

    With -o the file appears only once the export is complete.
    """
    url = state_of(ctx).choice().url
    users = _user_filter(user, anonymous)

    async def write(sink: IO[bytes], show_progress: bool) -> int:
        written = 0
        async with opened(url) as store:
            with progress("exporting sessions", None, enabled=show_progress) as advance:
                async for dump in store.export_sessions(user_id=users):
                    sink.write(_line(dump))
                    written += 1
                    advance()
        return written

    if output is None:
        stdout = typer.get_binary_stream("stdout")
        run(write(stdout, show_progress=False))
        stdout.flush()
        return
    with _replacing(output) as sink:
        written = run(write(sink, show_progress=True))
    say(f"Exported {written} sessions to {output}.")


@contextmanager
def _replacing(path: Path) -> Iterator[IO[bytes]]:
    """Write to a temp file beside ``path``; move it into place only on success."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(handle, "wb") as sink:
            yield sink
        Path(temp_name).replace(path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


@contextmanager
def _seekable(name: str) -> Iterator[IO[bytes]]:
    """Open ``name`` for reading bytes; ``-`` is stdin, spooled so it can be read twice."""
    if name != "-":
        with Path(name).open("rb") as stream:
            yield stream
        return
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        shutil.copyfileobj(typer.get_binary_stream("stdin"), spool)
        spool.seek(0)
        yield spool


def _parse(raw: bytes, number: int) -> dict[str, Any] | None:
    """Parse one line of an export (``None`` for a blank line).

    Raises:
        CommandError: the line is not a valid session, saying why.

    """
    try:
        text = raw.rstrip(b"\r\n").decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CommandError(f"line {number}: not UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not text.strip():
        return None
    try:
        dump = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CommandError(
            f"line {number}: not valid JSON ({exc.msg} at column {exc.colno})"
        ) from exc
    except RecursionError as exc:  # deeper than the parser's stack, so far too deep
        raise CommandError(
            f"line {number}: JSON nested too deeply (a value may nest lists and dicts "
            f"at most {MAX_JSON_DEPTH} levels deep)"
        ) from exc
    if not isinstance(dump, dict):
        raise CommandError(
            f"line {number}: expected one session as a JSON object, got {type(dump).__name__}"
        )
    return dump


def _sessions(stream: IO[bytes]) -> Iterator[tuple[int, dict[str, Any]]]:
    stream.seek(0)
    for number, raw in enumerate(stream, start=1):
        dump = _parse(raw, number)
        if dump is not None:
            yield number, dump


def import_file(
    ctx: typer.Context,
    file: Annotated[
        str, typer.Argument(metavar="FILE", help="An export (JSON Lines); '-' reads stdin.")
    ],
) -> None:
    """Import sessions from an export; each replaces a session with the same ids.

    Every line is checked first: one malformed line (reported with its
    number) imports nothing at all.
    """
    url = state_of(ctx).choice().url
    with _seekable(file) as stream:
        imported = run(_load(url, stream))
    say(f"Imported {imported} sessions.")


async def _check_all(store: SessionStore, stream: IO[bytes]) -> int:
    """Check every line as the import will (the store's own limits included); return the count."""
    total = 0
    try:
        for number, dump in _sessions(stream):
            try:
                await store.check_dump(dump)
            except InvalidParameterError as exc:
                raise CommandError(f"line {number}: {exc}") from exc
            total += 1
    except CommandError as exc:
        raise CommandError(f"{exc}; nothing imported") from exc
    return total


async def _load(url: str, stream: IO[bytes]) -> int:
    line = 0
    done = 0
    async with opened(url) as store:
        total = await _check_all(store, stream)
        with progress("importing sessions", total) as advance:

            async def dumps() -> AsyncIterator[dict[str, Any]]:
                nonlocal line, done
                for line, dump in _sessions(stream):  # noqa: B007 (read by the handler)
                    yield dump
                    done += 1
                    advance()

            try:
                return await store.import_sessions(dumps())
            except (InvalidParameterError, StoreError) as exc:
                code = EXIT_STORE_FAILED if isinstance(exc, StoreError) else EXIT_BAD_INPUT
                raise CommandError(
                    f"line {line}: {exc}; the {done} sessions before it were imported, "
                    "none after it (importing again is safe)",
                    code,
                ) from exc


def copy(
    ctx: typer.Context,
    target: Annotated[str, typer.Option("--to", metavar="URL", help="The store to copy into.")],
    source: Annotated[
        str | None,
        typer.Option("--from", metavar="URL", help="The store to copy from (default: --store)."),
    ] = None,
    user: UsersOption = None,
    anonymous: AnonymousOption = False,
) -> None:
    """Copy sessions exactly from one store to another (any two backends).

    Each session replaces the one with the same ids in the target, so a second
    run after an interruption resumes without duplicating anything. Sessions
    only in the target are left alone.
    """
    origin = source if source is not None else state_of(ctx).choice().url
    if origin == target:
        raise CommandError("--from and --to name the same store")
    users = _user_filter(user, anonymous)

    async def move() -> int:
        async with opened(origin) as from_store, opened(target) as to_store:
            with progress("copying sessions", None) as advance:

                async def counted() -> AsyncIterator[dict[str, Any]]:
                    async for dump in from_store.export_sessions(user_id=users):
                        yield dump
                        advance()

                return await to_store.import_sessions(counted())

    copied = run(move())
    say(f"Copied {copied} sessions from {redact_url(origin)} to {redact_url(target)}.")

"""Moving sessions: ``export`` (JSON Lines), ``import`` and ``copy`` between stores.

``import`` reads the whole file twice: first it checks every line and refuses
the file, importing nothing, if any line is malformed; then it imports. Each
session is written all or nothing and replaces a session with the same ids,
so running an import or a copy again never duplicates anything: after an
interruption (Ctrl-C exits 130 and says how far it got) the same command
finishes the job.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from sessionstore.backend_steps import SESSIONS_AT_ONCE
from sessionstore.cli.output import Advance, json_text, progress, progress_shown, say
from sessionstore.cli.runtime import (
    EXIT_BAD_INPUT,
    EXIT_INTERRUPTED,
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


@dataclass
class _Tally:
    """How far a transfer got: what Ctrl-C reports."""

    done: int = 0
    total: int | None = None  # known once counted, and counted only for a progress bar

    def __str__(self) -> str:
        return f"{self.done}" if self.total is None else f"{self.done} of {self.total}"


_WHOLE = "a session is never half written"
_AGAIN = (
    "run the same command again to finish: a session already done is replaced "
    "by the same session, never duplicated"
)


def _interrupted(what: str) -> CommandError:
    return CommandError(f"interrupted: {what}", EXIT_INTERRUPTED)


async def _count(store: SessionStore, users: str | AllUsers | None) -> int:
    """Return how many sessions ``export_sessions(user_id=users)`` yields now."""
    found = await store.list_users()
    return sum(u.session_count for u in found if isinstance(users, AllUsers) or u.user_id == users)


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
    tally = _Tally()

    async def write(sink: IO[bytes], show_progress: bool) -> int:
        async with opened(url, create=False) as store:
            if show_progress:
                tally.total = await _count(store, users)
            with progress("exporting sessions", tally.total, enabled=show_progress) as advance:
                async for dump in store.export_sessions(user_id=users):
                    sink.write(_line(dump))
                    tally.done += 1
                    advance()
        return tally.done

    try:
        if output is None:
            stdout = typer.get_binary_stream("stdout")
            # A bar on the terminal that also shows the lines would garble both.
            run(write(stdout, show_progress=progress_shown() and not sys.stdout.isatty()))
            stdout.flush()
            return
        with _replacing(output) as sink:
            written = run(write(sink, show_progress=progress_shown()))
    except KeyboardInterrupt:
        kept = (
            "each line written holds a whole session"
            if output is None
            else f"{output} is left as it was"
        )
        raise _interrupted(
            f"exported {tally} sessions; {kept}; run the same command again to export them all"
        ) from None
    say(f"Exported {written} sessions to {output}.")


def _file_mode(path: Path) -> int:
    """Return the mode ``path`` has, or the one a new file would get (0666 less the umask)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        # The only way to read the umask is to set it; no other thread runs yet.
        umask = os.umask(0o077)
        os.umask(umask)
        return 0o666 & ~umask


@contextmanager
def _replacing(path: Path) -> Iterator[IO[bytes]]:
    """Write to a temp file beside ``path``; move it into place only on success.

    The file keeps the mode ``path`` had, or gets the mode of any new file,
    not the temp file's 0600.

    Raises:
        CommandError: the temp file cannot be made, naming ``path`` (a
            missing directory, a directory not writable).

    """
    mode = _file_mode(path)
    try:
        handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except FileNotFoundError as exc:
        raise CommandError(f"cannot write {path}: no directory {path.parent}") from exc
    except OSError as exc:
        raise CommandError(f"cannot write {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(handle, "wb") as sink:
            os.fchmod(sink.fileno(), mode)
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
    tally = _Tally()
    try:
        with _seekable(file) as stream:
            imported = run(_load(url, stream, tally))
    except KeyboardInterrupt:
        if tally.total is None:
            raise _interrupted("while checking the file; nothing was imported") from None
        raise _interrupted(f"imported {tally} sessions; {_WHOLE}; {_AGAIN}") from None
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
            await asyncio.sleep(0)  # checking does no I/O: let Ctrl-C in between lines
    except CommandError as exc:
        raise CommandError(f"{exc}; nothing imported") from exc
    return total


class _RefusedError(Exception):
    """The store refused one session of a batch; the ones before it are imported."""

    def __init__(self, where: str, cause: InvalidParameterError | StoreError) -> None:
        super().__init__(where)
        self.where = where
        self.cause = cause


class _Batches:
    """Imports sessions ``SESSIONS_AT_ONCE`` at a time, counting each once it is written.

    ``tally.done`` is then what Ctrl-C may truthfully report. A batch the
    store refuses is imported again one session at a time (each replaces its
    namesake, so a session written twice ends the same), to find the session
    it refuses and import every one before it.
    """

    def __init__(self, store: SessionStore, tally: _Tally, advance: Advance) -> None:
        self._store = store
        self._tally = tally
        self._advance = advance
        self._pending: list[tuple[str, dict[str, Any]]] = []

    async def add(self, where: str, dump: dict[str, Any]) -> None:
        """Queue ``dump`` (``where``: how to name it in an error); import a full batch."""
        self._pending.append((where, dump))
        if len(self._pending) == SESSIONS_AT_ONCE:
            await self.flush()

    async def flush(self) -> None:
        """Import the queued sessions.

        Raises:
            _RefusedError: the store refused one; those before it are imported.

        """
        batch, self._pending = self._pending, []
        if not batch:
            return
        try:
            await self._store.import_sessions([dump for _, dump in batch])
        except (InvalidParameterError, StoreError):
            for where, dump in batch:
                try:
                    await self._store.import_sessions((dump,))
                except (InvalidParameterError, StoreError) as exc:
                    raise _RefusedError(where, exc) from exc
                self._done(1)
            return
        self._done(len(batch))

    def _done(self, count: int) -> None:
        self._tally.done += count
        for _ in range(count):
            self._advance()


async def _load(url: str, stream: IO[bytes], tally: _Tally) -> int:
    async with opened(url) as store:
        tally.total = await _check_all(store, stream)
        with progress("importing sessions", tally.total) as advance:
            batches = _Batches(store, tally, advance)
            try:
                for line, dump in _sessions(stream):
                    await batches.add(f"line {line}", dump)
                await batches.flush()
            except _RefusedError as refused:
                exc = refused.cause
                code = EXIT_STORE_FAILED if isinstance(exc, StoreError) else EXIT_BAD_INPUT
                raise CommandError(
                    f"{refused.where}: {exc}; the {tally.done} sessions before it were "
                    "imported, none after it (importing again is safe)",
                    code,
                ) from exc
        return tally.done


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

    tally = _Tally()

    async def move() -> int:
        async with opened(origin, create=False) as from_store, opened(target) as to_store:
            if progress_shown():
                tally.total = await _count(from_store, users)
            with progress("copying sessions", tally.total) as advance:
                batches = _Batches(to_store, tally, advance)
                try:
                    async for dump in from_store.export_sessions(user_id=users):
                        session = f"session {dump['session_id']!r} of user {dump['user_id']!r}"
                        await batches.add(session, dump)
                    await batches.flush()
                except _RefusedError as refused:
                    if isinstance(refused.cause, StoreError):
                        raise refused.cause from None
                    # Name the session: the store's message does not.
                    raise CommandError(
                        f"{refused.where} cannot be copied: {refused.cause}; "
                        f"the {tally.done} sessions before it were copied"
                    ) from refused.cause
                return tally.done

    try:
        copied = run(move())
    except KeyboardInterrupt:
        raise _interrupted(f"copied {tally} sessions; {_WHOLE}; {_AGAIN}") from None
    say(f"Copied {copied} sessions from {redact_url(origin)} to {redact_url(target)}.")

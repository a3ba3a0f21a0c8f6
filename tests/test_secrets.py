"""No credential reaches any output, however the store URL is spelled.

Passwords come from Hypothesis with raw ``/``, ``#``, ``?``, ``@``, ``&``,
``%``... between three marker words; neither the password nor any marker may
appear in a ``repr``, ``describe()``, an error or its traceback, or the
command line's output. Servers are never reached: every URL names a port
nothing listens on.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from sessionstore import SessionError, open_store
from sessionstore.cli.app import app
from sessionstore.urls import redact_url, split_options
from tests.servers import free_port

UNPARSEABLE_URL = "<unparseable URL>"
MARKS = ("Kq7", "Wz8", "Jv9")
SPECIALS = "/#?@:&=%+;!$'()*,[]~ "
SERVER_SCHEMES = (
    "redis",
    "rediss",
    "valkey",
    "valkeys",
    "redis+cluster",
    "postgresql",
    "postgres",
    "mysql",
    "mariadb",
)
EVERY_SCHEME = (*SERVER_SCHEMES, "memory", "sqlite", "file", "nosuch")
SECRET_NAMES = ("password", "sslpassword", "passwd", "pass", "token", "secret", "api_key")
PORT = free_port()
QUICK = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def passwords(specials: str = SPECIALS) -> st.SearchStrategy[str]:
    """Passwords of marker words joined by runs of URL-special characters."""
    runs = st.text(alphabet=specials + "xy", max_size=5)
    return st.builds(lambda a, b: f"{MARKS[0]}{a}{MARKS[1]}{b}{MARKS[2]}", runs, runs)


def assert_hidden(password: str, *texts: str) -> None:
    for text in texts:
        for secret in (password, *MARKS):
            assert secret not in text, f"{secret!r} leaked in {text!r}"


def shown_by(error: BaseException) -> list[str]:
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


def outputs_of_opening(url: str) -> list[str]:
    """Everything open_store shows: the store's repr and describe(), or the error."""
    try:
        store = open_store(url)
    except SessionError as exc:
        return shown_by(exc)
    return [repr(store), store.describe(), str(store)]


# -- redact_url and open_store, without I/O ------------------------------------------


@QUICK
@given(password=passwords())
@example(password="Kq7/Wz8#Jv9")
@example(password="Kq7?Wz8@Jv9")
@example(password="Kq7@Wz8:Jv9")
@example(password="Kq7&password=Wz8@Jv9")
@pytest.mark.parametrize("scheme", EVERY_SCHEME)
def test_a_password_in_the_userinfo_is_never_shown(scheme: str, password: str) -> None:
    url = f"{scheme}://user:{password}@127.0.0.1:{PORT}/db"
    shown = redact_url(url)
    assert_hidden(password, shown)
    assert shown.startswith(f"{scheme}://")
    try:
        store = open_store(url)
    except SessionError as exc:
        assert_hidden(password, *shown_by(exc))
    else:
        assert_hidden(password, repr(store), store.describe())


@QUICK
@given(secret=passwords(), name=st.sampled_from(SECRET_NAMES))
@example(secret="Kq7&Wz8=Jv9", name="sslpassword")
@example(secret="Kq7@Wz8#Jv9", name="password")
@pytest.mark.parametrize("scheme", EVERY_SCHEME)
def test_a_secret_query_value_is_never_shown(
    scheme: str, secret: str, name: str, tmp_path: Path
) -> None:
    where = {
        "memory": "",
        "sqlite": f"/{tmp_path}/x.db",
        "file": f"/{tmp_path}/dir",
    }.get(scheme, f"user@127.0.0.1:{PORT}/0")
    url = f"{scheme}://{where}?ttl=5&{name}={secret}"
    assert_hidden(secret, redact_url(url), *outputs_of_opening(url))


@pytest.mark.parametrize(
    "url",
    [
        "Kq7:Wz8@127.0.0.1/db",
        "user:Kq7@Wz8://127.0.0.1/db",
        "postgresql:/user:Kq7@127.0.0.1/db",
        "redis//:Kq7@127.0.0.1",
    ],
)
def test_a_url_that_does_not_parse_is_shown_without_its_contents(url: str) -> None:
    assert redact_url(url) == UNPARSEABLE_URL
    with pytest.raises(SessionError) as caught:
        open_store(url)
    assert UNPARSEABLE_URL in str(caught.value)
    assert_hidden("Kq7", *shown_by(caught.value))


def test_plain_urls_are_shown_as_they_are() -> None:
    for url in (
        "redis://127.0.0.1:6379/0?prefix=app",
        "postgresql://app@db/app?pool_size=2",
        "sqlite:////var/lib/app/sessions.db",
        "file://relative/dir?durability=fsync",
        "memory://",
    ):
        assert redact_url(url) == url
    assert redact_url("mysql://root:pw@db/app?ttl=5") == "mysql://root:***@db/app?ttl=5"
    assert redact_url("redis://:p/w@h:1/0?prefix=a") == "redis://:***@h:1/0?prefix=a"


def test_options_after_a_secret_are_not_echoed() -> None:
    """A raw ``&`` in a secret splits it: what follows may be the secret's end."""
    secret_option = {"password": str, "prefix": float}
    queries = ("password=Kq7&Wz8", "password=Kq7&Wz8=1", "password=x&prefix=Kq7", "prefix=1;Kq7=2")
    for query in queries:
        with pytest.raises(SessionError) as caught:
            split_options(f"mystore://h?{query}", {}, secret_option)
        assert_hidden("Kq7", *shown_by(caught.value))
    with pytest.raises(SessionError, match="unknown option 'colour'"):
        split_options("mystore://h?colour=1&password=x", {}, secret_option)


def test_a_password_with_raw_characters_splits_the_query_after_it() -> None:
    """SQLAlchemy takes a raw ``?`` into the password: so does the query's split."""
    store = open_store("postgresql://user:Kq7?x=1@127.0.0.1/db?table_prefix=app")
    assert store.describe() == "postgresql://user:***@127.0.0.1/db table_prefix='app'"


def test_a_given_sql_engine_is_described_without_secrets() -> None:
    from sqlalchemy.ext.asyncio import create_async_engine  # noqa: PLC0415 (the postgres extra)

    from sessionstore.backends.sql import SQLStore  # noqa: PLC0415

    async def describe() -> str:
        url = f"postgresql+asyncpg://user:Kq7@127.0.0.1:{PORT}/db?sslpassword=Wz8"
        engine = create_async_engine(url)
        try:
            return repr(SQLStore(engine=engine))
        finally:
            await engine.dispose()

    shown = asyncio.run(describe())
    assert "sslpassword=***" in shown
    assert_hidden("Kq7", shown)


def test_a_redis_url_the_driver_would_misread_is_refused() -> None:
    """redis-py would take ``:12`` as the port and ``/Kq7@127.0.0.1`` as the database."""
    with pytest.raises(SessionError, match="percent-encode") as caught:
        open_store("redis://:12/Kq7@127.0.0.1:6379/0")
    assert "redis://:***@127.0.0.1:6379/0" in str(caught.value)


# -- reaching for the server: errors and their tracebacks ------------------------------


async def _open_fails(url: str) -> list[str]:
    store = open_store(url)
    try:
        await store.count_qa_entries("s", None)  # Redis connects on the first call
    except SessionError as exc:
        return [repr(store), *shown_by(exc)]
    finally:
        await store.close()
    raise AssertionError(f"{redact_url(url)} opened: something listens on port {PORT}")


@settings(max_examples=15, deadline=None)
@given(password=passwords(SPECIALS.replace("@", "")))
@example(password="Kq7/Wz8#Jv9")
@example(password="Kq7?Wz8/Jv9")
@pytest.mark.parametrize("scheme", ["postgresql", "mysql", "mariadb"])
def test_sql_errors_never_show_the_password(scheme: str, password: str) -> None:
    # SQLAlchemy takes a raw "/", "?" or "#" into the password, not a raw "@".
    url = f"{scheme}://user:{password}@127.0.0.1:{PORT}/db?connect_timeout=1"
    assert_hidden(password, *asyncio.run(_open_fails(url)))


@settings(max_examples=15, deadline=None)
@given(password=passwords(SPECIALS.replace("/", "").replace("?", "").replace("#", "")))
@example(password="Kq7@Wz8:Jv9")
@pytest.mark.parametrize("scheme", ["redis", "rediss", "valkey", "redis+cluster"])
def test_redis_errors_never_show_the_password(scheme: str, password: str) -> None:
    # redis-py ends the host at a raw "/", "?" or "#" (the error path above).
    if "[" in password or "]" in password:
        url = f"{scheme}://:{password}@127.0.0.1:{PORT}/0"
        assert_hidden(password, *outputs_of_opening(url))
        return
    url = f"{scheme}://:{password}@127.0.0.1:{PORT}/0?socket_timeout=1&connect_timeout=1"
    assert_hidden(password, *asyncio.run(_open_fails(url)))


# -- the command line --------------------------------------------------------------------

CLI_PASSWORDS = ["Kq7/Wz8#Jv9", "Kq7?Wz8@Jv9", "Kq7@Wz8/Jv9&x"]


@pytest.mark.parametrize("password", CLI_PASSWORDS)
@pytest.mark.parametrize("scheme", ["redis", "postgresql", "mysql"])
def test_the_command_line_never_shows_the_password(
    scheme: str, password: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    url = f"{scheme}://user:{password}@127.0.0.1:{PORT}/db?connect_timeout=1"
    runner = CliRunner()
    outputs = []
    for args in (["where"], ["where", "--json"], ["--debug", "ls"], ["ls", "--json"]):
        result = runner.invoke(app, ["--store", url, *args])
        outputs += [result.stdout, result.stderr]
        assert result.exit_code in (0, 1, 2), result.exception
    where = json.loads(outputs[2])
    assert where["url"].startswith(f"{scheme}://user:***@") or where["url"] == f"{scheme}://***"
    assert "Traceback" in outputs[5]
    assert_hidden(password, *outputs)


def test_the_entry_point_never_shows_the_password(tmp_path: Path) -> None:
    """The real ``sessionstore`` process: environment variable and --store alike."""
    url = f"postgresql://user:Kq7/Wz8?Jv9@127.0.0.1:{PORT}/db?connect_timeout=1"
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "PYTHONIOENCODING": "utf-8"}
    for args, extra in (
        (["--store", url, "where", "--json"], {}),
        (["--debug", "ls"], {"SESSIONSTORE_URL": url}),
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "sessionstore.cli", *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=60,
            check=False,
        )
        assert_hidden("Kq7/Wz8?Jv9", proc.stdout, proc.stderr)
    assert "Traceback" in proc.stderr

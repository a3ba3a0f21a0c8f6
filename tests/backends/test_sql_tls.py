"""The SQL backend's connection options: TLS for real, and the driver options passed through.

A throwaway CA signs the certificates of a throwaway PostgreSQL and MariaDB
that require TLS (``tests/servers.py``, ``tests/certificates.py``); the
stores connect with verification on, with a client certificate where the
server asks for one, and fail clearly with a CA that did not sign the
server's certificate. The option tests need no TLS server.
"""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from typer.testing import CliRunner

from sessionstore import (
    InvalidParameterError,
    SessionStore,
    StoreError,
    StoreUnavailableError,
    open_store,
)
from sessionstore.backends.sql import SQLStore
from sessionstore.backends.sql.engine import driver_url
from sessionstore.cli.app import app
from sessionstore.urls import redact_url
from tests.certificates import KEY_PASSWORD, Certificates, make_certificates
from tests.servers import server_url, throwaway_tls_mariadb, throwaway_tls_postgres

pytestmark = pytest.mark.timeout(180)

GUARD = 30.0  # a call still running after this would have hung
CLIENTS = ("certuser", "x509user")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("tls"), CLIENTS)


@pytest.fixture(scope="module")
def postgres_tls(certs: Certificates) -> Iterator[str]:
    """``127.0.0.1:port`` of a PostgreSQL that requires TLS (see ``throwaway_tls_postgres``)."""
    with throwaway_tls_postgres(certs) as address:
        yield address


@pytest.fixture(scope="module")
def mariadb_tls(certs: Certificates) -> Iterator[str]:
    """``127.0.0.1:port`` of a MariaDB with TLS (see ``throwaway_tls_mariadb``)."""
    with throwaway_tls_mariadb(certs) as address:
        yield address


def _prefix() -> str:
    return f"s{uuid.uuid4().hex[:12]}_"


async def _round_trip(store: SessionStore) -> None:
    """Write, read back and delete a session through ``store``, drop its tables, close it."""
    assert isinstance(store, SQLStore)
    async with store:
        qa_id = await asyncio.wait_for(store.create_qa_entry("s", "u", "q?", "a!"), GUARD)
        entries = await store.get_all_qa_entries("s", "u")
        assert [(e.id, e.question, e.answer) for e in entries] == [(qa_id, "q?", "a!")]
        assert await store.delete_session("s", "u")
        await store.drop_tables()


async def _scalar(store: SessionStore, sql: str) -> Any:
    assert isinstance(store, SQLStore)
    async with store._get_engine().connect() as conn:
        return await conn.scalar(text(sql))


async def _fails(store: SessionStore, error: type[StoreError], match: str) -> str:
    """Return the message of ``error`` raised, within the guard, by the store's first call."""
    try:
        with pytest.raises(error, match=match) as raised:
            await asyncio.wait_for(store.count_qa_entries("s", "u"), GUARD)
    finally:
        await store.close()
    return str(raised.value)


# -- PostgreSQL ----------------------------------------------------------------------


async def test_postgres_verify_full_with_its_ca(postgres_tls: str, certs: Certificates) -> None:
    url = f"postgresql://postgres@{postgres_tls}/test?sslmode=verify-full&sslrootcert={certs.ca}"
    store = open_store(url, table_prefix=_prefix())
    async with store:
        assert await _scalar(store, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert await _scalar(store, "SELECT current_setting('application_name')") == "sessionstore"
    await _round_trip(open_store(url, table_prefix=_prefix()))


async def test_postgres_with_a_wrong_ca_fails_clearly(
    postgres_tls: str, certs: Certificates
) -> None:
    url = (
        f"postgresql://postgres:pw-n0t-shown@{postgres_tls}/test"
        f"?sslmode=verify-full&sslrootcert={certs.other_ca}"
    )
    store = open_store(url)
    said = await _fails(store, StoreUnavailableError, "TLS connection to the database failed")
    assert "CERTIFICATE_VERIFY_FAILED" in said
    assert "pw-n0t-shown" not in said + repr(store)


async def test_postgres_client_certificate_with_an_encrypted_key(
    postgres_tls: str, certs: Certificates
) -> None:
    """``certuser`` logs in only with a certificate: ``cert`` authentication."""
    url = f"postgresql://certuser@{postgres_tls}/test"
    keys: dict[str, Any] = {
        "sslmode": "verify-full",
        "sslrootcert": certs.ca,  # a Path: keyword values are typed, not only strings
        "sslcert": certs.client_cert("certuser"),
        "sslkey": certs.encrypted_key("certuser"),
        "sslpassword": KEY_PASSWORD,
    }
    store = open_store(url, table_prefix=_prefix(), **keys)
    assert KEY_PASSWORD not in repr(store) + store.describe()
    await _round_trip(store)
    in_url = f"{url}?" + "&".join(f"{name}={value}" for name, value in keys.items())
    await _round_trip(open_store(in_url, table_prefix=_prefix()))
    # Without the certificate, the server refuses the login.
    without = open_store(url, sslmode="verify-full", sslrootcert=certs.ca)
    assert "certificate" in await _fails(without, StoreError, "refused")
    # A wrong key password: TLS fails on this side, and the password is never shown.
    wrong = open_store(url, **{**keys, "sslpassword": "wrong-" + KEY_PASSWORD})
    assert KEY_PASSWORD not in await _fails(wrong, StoreUnavailableError, "TLS")


@pytest.mark.parametrize("option", ["sslmode", "ssl"])
async def test_postgres_sslmode_require_encrypts_without_verifying(
    postgres_tls: str, option: str
) -> None:
    url = f"postgresql://postgres@{postgres_tls}/test?{option}=require"
    store = open_store(url, table_prefix=_prefix())
    async with store:
        assert await _scalar(store, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    await _round_trip(open_store(url, table_prefix=_prefix()))


async def test_postgres_that_requires_tls_refuses_a_plain_connection(postgres_tls: str) -> None:
    store = open_store(f"postgresql://postgres@{postgres_tls}/test?sslmode=disable")
    assert "no encryption" in await _fails(store, StoreError, "refused")


# -- MariaDB -------------------------------------------------------------------------


async def test_mariadb_verified_with_its_ca(mariadb_tls: str, certs: Certificates) -> None:
    """``ssl_ca`` alone verifies the certificate and the host name (127.0.0.1 in its SAN)."""
    url = f"mysql://tlsuser@{mariadb_tls}/test?ssl_ca={certs.ca}&charset=utf8mb4"
    store = open_store(url, table_prefix=_prefix())
    async with store:
        assert await _scalar(
            store,
            "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
            "WHERE VARIABLE_NAME = 'Ssl_version'",
        )
    await _round_trip(open_store(url, table_prefix=_prefix()))
    identity = f"mariadb://tlsuser@{mariadb_tls}/test?ssl_mode=VERIFY_IDENTITY&ssl_ca={certs.ca}"
    await _round_trip(open_store(identity, table_prefix=_prefix()))


async def test_mariadb_with_a_wrong_ca_fails_clearly(mariadb_tls: str, certs: Certificates) -> None:
    url = f"mysql://tlsuser:pw-n0t-shown@{mariadb_tls}/test?ssl_ca={certs.other_ca}"
    store = open_store(url)
    said = await _fails(store, StoreUnavailableError, "TLS connection to the database failed")
    assert "CERTIFICATE_VERIFY_FAILED" in said
    assert "pw-n0t-shown" not in said + repr(store)


async def test_mariadb_client_certificate_with_an_encrypted_key(
    mariadb_tls: str, certs: Certificates
) -> None:
    """``x509user`` is ``REQUIRE X509``: a client certificate signed by the server's CA."""
    url = (
        f"mysql://x509user@{mariadb_tls}/test?ssl_mode=verify_identity&ssl_ca={certs.ca}"
        f"&ssl_cert={certs.client_cert('x509user')}&ssl_key={certs.encrypted_key('x509user')}"
        f"&ssl_key_password={KEY_PASSWORD}"
    )
    store = open_store(url, table_prefix=_prefix())
    assert KEY_PASSWORD not in repr(store)
    await _round_trip(store)
    without = open_store(f"mysql://x509user@{mariadb_tls}/test", ssl_ca=certs.ca)
    assert "Access denied" in await _fails(without, StoreError, "refused")
    wrong = open_store(url.replace(KEY_PASSWORD, "wrong-password"))
    with pytest.raises(InvalidParameterError, match="unusable") as raised:
        await wrong.count_qa_entries("s", "u")
    await wrong.close()
    assert "wrong-password" not in str(raised.value)


async def test_mariadb_ssl_mode_required_encrypts_without_verifying(mariadb_tls: str) -> None:
    url = f"mysql://tlsuser@{mariadb_tls}/test?ssl_mode=required"
    await _round_trip(open_store(url, table_prefix=_prefix()))
    await _round_trip(
        open_store(f"mysql://tlsuser@{mariadb_tls}/test?ssl=true", table_prefix=_prefix())
    )
    plain = open_store(f"mysql://tlsuser@{mariadb_tls}/test")  # REQUIRE SSL: refused
    assert "Access denied" in await _fails(plain, StoreError, "refused")


# -- event loops over TLS ----------------------------------------------------------


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_tls_connections_of_loops_closed_by_hand_are_closed_without_warnings(
    server: str, request: pytest.FixtureRequest, certs: Certificates
) -> None:
    """A loop closed without closing its async generators: its TLS sockets closed directly."""
    if server == "postgresql":
        address = request.getfixturevalue("postgres_tls")
        url = f"postgresql://postgres@{address}/test?sslmode=verify-full&sslrootcert={certs.ca}"
    else:
        address = request.getfixturevalue("mariadb_tls")
        url = f"mysql://tlsuser@{address}/test?ssl_ca={certs.ca}"
    store = open_store(url, table_prefix=_prefix())
    assert isinstance(store, SQLStore)

    async def calls(n: int) -> int:
        await store.create_qa_entry("s", "u", f"q{n}", "a")
        counts = await asyncio.gather(*(store.count_qa_entries("s", "u") for _ in range(3)))
        return counts[0]

    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        for n in range(3):
            loop = asyncio.new_event_loop()
            assert loop.run_until_complete(asyncio.wait_for(calls(n), GUARD)) == n + 1
            loop.close()
        assert asyncio.run(calls(3)) == 4  # this loop's first engine closes the ended loops'
        asyncio.run(store.drop_tables())
        asyncio.run(store.close())
        gc.collect()


# -- driver options, without a TLS server --------------------------------------------


@pytest.mark.parametrize(
    ("server", "scheme"),
    [
        ("postgresql", "postgresql+asyncpg"),
        ("postgresql", "postgres+asyncpg"),
        ("mariadb", "mysql+asyncmy"),
        ("mariadb", "mariadb+asyncmy"),
    ],
)
async def test_a_scheme_naming_our_driver_works(server: str, scheme: str) -> None:
    rest = server_url(server).split("://", 1)[1]
    url = f"{scheme}://{rest}?table_prefix={_prefix()}"
    store = open_store(url)
    assert repr(store).startswith(f"<SQLStore {scheme}://")
    await _round_trip(store)


@pytest.mark.parametrize(
    ("url", "ours"),
    [
        ("postgresql+psycopg://u:pw-s3cret@h/db", "asyncpg"),
        ("postgresql+psycopg2://u:pw-s3cret@h/db", "asyncpg"),
        ("mysql+pymysql://u:pw-s3cret@h/db", "asyncmy"),
        ("mariadb+mariadbconnector://u:pw-s3cret@h/db", "asyncmy"),
    ],
)
def test_a_driver_we_do_not_ship_is_refused_naming_ours(url: str, ours: str) -> None:
    with pytest.raises(InvalidParameterError, match=f"through the {ours} driver only") as raised:
        open_store(url)
    assert "pw-s3cret" not in str(raised.value)


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_an_unknown_option_lists_ours_and_the_drivers(server: str) -> None:
    drivers = {"postgresql": "sslrootcert", "mariadb": "ssl_ca"}
    with pytest.raises(InvalidParameterError) as raised:
        open_store(f"{server_url(server)}?sslmode_typo=1")
    said = str(raised.value)
    assert "unknown option 'sslmode_typo'" in said
    ours, _, passed = said.partition("; passed to the driver: ")
    assert "table_prefix" in ours
    assert "command_timeout" in ours
    assert drivers[server] in passed.split(", ")
    assert "table_prefix" not in passed


BAD_OPTIONS = [
    ("postgresql", {"sslmode": "verify"}, "sslmode must be one of"),
    ("postgresql", {"ssl": "maybe"}, "ssl must be one of"),
    ("postgresql", {"statement_cache_size": -1}, "statement_cache_size must be an int"),
    ("postgresql", {"statement_cache_size": "0"}, "statement_cache_size must be an int"),
    ("postgresql", {"sslrootcert": 12}, "sslrootcert must be a file path"),
    ("postgresql", {"server_settings": {"search_path": 1}}, "server_settings must be a dict"),
    ("postgresql", {"sslmode": "require", "ssl": "require"}, "sslmode or ssl, not both"),
    ("postgresql", {"sslkey": "/k.pem"}, "need sslcert"),
    ("postgresql", {"target_session_attrs": "leader"}, "target_session_attrs must be one of"),
    ("mariadb", {"charset": "latin1"}, "charset must be utf8mb4"),
    ("mariadb", {"ssl_mode": "preferred"}, "cannot fall back"),
    ("mariadb", {"ssl_mode": "verify_full"}, "ssl_mode must be one of"),
    ("mariadb", {"ssl_verify_cert": "yes"}, "ssl_verify_cert must be True or False"),
    ("mariadb", {"read_timeout": 0}, "read_timeout"),
    ("mariadb", {"ssl_mode": "disabled", "ssl_ca": "/ca.pem"}, "TLS is disabled"),
    ("mariadb", {"ssl_verify_cert": False, "ssl_verify_identity": True}, "host name"),
    ("mariadb", {"ssl_mode": "verify_ca", "ssl_verify_cert": False}, "verifies the certificate"),
    ("mariadb", {"ssl_key": "/k.pem"}, "need ssl_cert"),
]


@pytest.mark.parametrize(("server", "options", "match"), BAD_OPTIONS)
def test_driver_options_are_checked_before_any_io(
    server: str, options: dict[str, Any], match: str
) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        open_store("postgresql://h/db" if server == "postgresql" else "mysql://h/db", **options)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("postgresql://h/db?statement_cache_size=many", "statement_cache_size"),
        ("postgresql://h/db?server_settings=x", "only a keyword argument"),
        ("mysql://h/db?ssl_verify_identity=perhaps", "ssl_verify_identity"),
        ("mysql://h/db?read_timeout=soon", "read_timeout"),
    ],
)
def test_driver_options_in_a_url_are_parsed(url: str, match: str) -> None:
    with pytest.raises(InvalidParameterError, match=match):
        open_store(url)


def test_driver_option_values_are_typed_from_a_url() -> None:
    store = open_store(
        "mysql://h/db?ssl_mode=VERIFY-CA&ssl_verify_identity=false&read_timeout=2.5&ssl=true"
    )
    assert isinstance(store, SQLStore)
    assert store._engine_options.driver == {
        "ssl_mode": "verify_ca",
        "ssl_verify_identity": False,
        "read_timeout": 2.5,
        "ssl": True,
    }
    pg = open_store("postgresql://h/db?statement_cache_size=0&ssl=true&sslrootcert=/ca.pem")
    assert isinstance(pg, SQLStore)
    assert pg._engine_options.driver == {
        "statement_cache_size": 0,
        "ssl": True,
        "sslrootcert": "/ca.pem",
    }


async def test_driver_options_with_a_borrowed_engine_are_refused() -> None:
    engine = create_async_engine(driver_url(server_url("postgresql")))
    try:
        with pytest.raises(InvalidParameterError, match="apply to an engine the store builds"):
            SQLStore(engine=engine, sslmode="require")
    finally:
        await engine.dispose()


async def test_a_certificate_file_that_cannot_be_read_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "missing-ca.pem"
    for url in (
        f"{server_url('postgresql')}?sslmode=verify-full&sslrootcert={missing}",
        f"{server_url('mariadb')}?ssl_ca={missing}",
    ):
        store = open_store(url)
        with pytest.raises(InvalidParameterError, match=r"(sslrootcert|ssl_ca): cannot read"):
            await store.count_qa_entries("s", "u")
        await store.close()


async def test_postgres_session_name_and_settings_reach_the_server() -> None:
    name = f"app-{uuid.uuid4().hex[:8]}"
    url = f"{server_url('postgresql')}?application_name={name}&statement_cache_size=0"
    store = open_store(url, server_settings={"search_path": "public"}, table_prefix=_prefix())
    async with store:
        assert await _scalar(store, "SELECT current_setting('application_name')") == name
        assert await _scalar(store, "SHOW search_path") == "public"
    await _round_trip(open_store(url, table_prefix=_prefix()))


async def test_mysql_charset_and_timeouts_pass_through() -> None:
    url = f"{server_url('mariadb')}?charset=utf8mb4&read_timeout=20&program_name=myapp"
    store = open_store(url, table_prefix=_prefix())
    async with store:
        assert await _scalar(store, "SELECT @@character_set_client") == "utf8mb4"
    await _round_trip(open_store(url, table_prefix=_prefix()))


SECRETS = {"sslpassword": "hunter2-pg-secret", "ssl_key_password": "hunter2-my-secret"}


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:pw-secret@db.example/app?sslmode=verify-full&sslpassword=hunter2-pg-secret"
        "&sslcert=/c.pem",
        "mysql://app:pw-secret@db.example/app?ssl_cert=/c.pem&ssl_key_password=hunter2-my-secret",
    ],
)
def test_secret_driver_options_are_never_shown(url: str) -> None:
    shown = [redact_url(url), repr(open_store(url))]
    with pytest.raises(InvalidParameterError) as unknown:
        open_store(url + "&later_typo=1")
    shown.append(str(unknown.value))
    result = CliRunner().invoke(app, ["--store", url, "where", "--json"])
    assert result.exit_code == 0, result.output
    shown.append(json.dumps(json.loads(result.stdout)))
    for text_shown in shown:
        for secret in (*SECRETS.values(), "pw-secret"):
            assert secret not in text_shown
    assert "password=***" in shown[0]

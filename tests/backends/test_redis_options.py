"""Redis URLs and options: the store's own, redis-py's passed through, the refused ones.

What reaches redis-py is read back from the pool's ``connection_kwargs``
(the arguments each new connection gets) and, where it matters, from the
server itself. TLS options are exercised for real in ``test_redis_tls.py``.
"""

from __future__ import annotations

import ssl
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from sessionstore import InvalidParameterError, StoreError, open_store
from sessionstore.urls import redact_url
from tests.servers import throwaway_redis

redis_asyncio = pytest.importorskip("redis.asyncio")

from sessionstore.backends.redis import RedisStore  # noqa: E402 - after the extra's check


@pytest.fixture
def server(redis_server_url: str) -> str:
    """``host:port`` of the test Redis server."""
    return urlsplit(redis_server_url).netloc.rpartition("@")[2]


@pytest.fixture
def prefix() -> str:
    return "opt" + uuid.uuid4().hex[:10]


@pytest.fixture
async def raw(server: str) -> AsyncIterator[Any]:
    """A plain client on database 3 of the test server, which tests clean up."""
    client = redis_asyncio.Redis.from_url(f"redis://{server}/3")
    yield client
    await client.aclose()


def _connection_kwargs(store: Any) -> dict[str, Any]:
    kwargs: dict[str, Any] = store.client.connection_pool.connection_kwargs
    return kwargs


async def _keys(client: Any, prefix: str) -> list[bytes]:
    return [key async for key in client.scan_iter(match=f"{prefix}:*")]


# -- redis-py's options pass through ---------------------------------------------------


@pytest.mark.parametrize("how", ["query", "keyword", "path"])
async def test_database_number(server: str, prefix: str, raw: Any, how: str) -> None:
    url = {
        "query": f"redis://{server}?db=3&prefix={prefix}",
        "keyword": f"redis://{server}/?prefix={prefix}",
        "path": f"redis://{server}/3?prefix={prefix}",
    }[how]
    store = open_store(url, **({"db": 3} if how == "keyword" else {}))
    try:
        await store.create_qa_entry("s", "u", "q", "a")
        assert _connection_kwargs(store)["db"] == 3
        assert await _keys(raw, prefix) != []  # the store wrote into database 3
        await store.prune()
    finally:
        await store.close()


def test_database_number_given_twice(server: str) -> None:
    with pytest.raises(InvalidParameterError, match="db is given twice"):
        open_store(f"redis://{server}/0?db=2")
    assert isinstance(open_store(f"redis://{server}/2?db=2"), RedisStore)  # the same one
    with pytest.raises(InvalidParameterError, match="db must be an int >= 0"):
        open_store(f"redis://{server}", db=-1)
    with pytest.raises(InvalidParameterError, match="only database 0"):
        open_store(f"redis+cluster://{server}?db=1")


async def test_typed_values_reach_the_driver(server: str, prefix: str) -> None:
    name = "sessionstore-" + uuid.uuid4().hex[:8]
    store = open_store(
        f"redis://{server}/0?prefix={prefix}&health_check_interval=2.5&socket_keepalive=yes"
        f"&protocol=3&client_name={name}"
    )
    try:
        assert await store.count_qa_entries("s", "u") == 0
        kwargs = _connection_kwargs(store)
        assert kwargs["health_check_interval"] == 2.5
        assert kwargs["socket_keepalive"] is True
        assert kwargs["protocol"] == 3
        info = await store.client.client_info()
        assert (info["name"], str(info["resp"])) == (name, "3")
    finally:
        await store.close()


async def test_tls_values_are_typed_and_checked(server: str, tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("not read before the first connection")
    store = open_store(
        f"rediss://{server}?ssl_ca_certs={ca}&ssl_cert_reqs=REQUIRED&ssl_min_version=TLSv1.3"
        "&ssl_check_hostname=false"
    )
    await store.open()  # builds this loop's client; it connects on the first call only
    settings = _connection_kwargs(store)
    await store.close()
    assert settings["ssl_ca_certs"] == str(ca)
    assert settings["ssl_cert_reqs"] == "required"
    assert settings["ssl_min_version"] is ssl.TLSVersion.TLSv1_3
    assert settings["ssl_check_hostname"] is False
    bad = {
        "ssl_cert_reqs=sometimes": "ssl_cert_reqs must be none, optional or required",
        "ssl_min_version=SSLv3": "ssl_min_version must be TLSv1_2 or TLSv1_3",
        f"ssl_ca_certs={tmp_path / 'missing.pem'}": "ssl_ca_certs: no file at",
        f"ssl_ca_path={tmp_path / 'missing'}": "ssl_ca_path: no directory at",
        "ssl_check_hostname=maybe": "ssl_check_hostname",
        "health_check_interval=soon": "health_check_interval",
        "protocol=4": "protocol must be 2 or 3",
        "client_name=two%20words": "client_name must hold no spaces",
    }
    for query, message in bad.items():
        with pytest.raises(InvalidParameterError, match=message):
            open_store(f"rediss://{server}?{query}")
    with pytest.raises(InvalidParameterError, match="ssl_ca_certs must be a file path"):
        open_store(f"rediss://{server}", ssl_ca_certs=3)
    with pytest.raises(InvalidParameterError, match="ssl_check_hostname must be true or false"):
        open_store(f"rediss://{server}", ssl_check_hostname="no")


def test_cluster_refuses_what_redis_py_cannot_do_there(server: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidParameterError, match="ssl_ca_path is not supported on a Redis"):
        open_store(f"rediss+cluster://{server}?ssl_ca_path={tmp_path}")
    with pytest.raises(InvalidParameterError, match="ssl_password is not supported on a Redis"):
        open_store(f"rediss+cluster://{server}", ssl_password="x")


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("decode_responses", "raw bytes"),
        ("encoding", "raw bytes"),
        ("retry_on_timeout", "never retries"),
        ("read_from_replicas", "replica may lag"),
        ("socket_connect_timeout", "connect_timeout"),
        ("ssl", "rediss://"),
    ],
)
def test_options_that_would_break_the_store_are_refused(
    server: str, name: str, reason: str
) -> None:
    for attempt in (
        lambda: open_store(f"redis://{server}/0?{name}=true"),
        lambda: open_store(f"redis://{server}/0", **{name: True}),
    ):
        with pytest.raises(InvalidParameterError, match=f"option {name} cannot be used") as e:
            attempt()
        assert reason in str(e.value)


def test_unknown_option_lists_ours_and_the_drivers(server: str) -> None:
    for attempt in (
        lambda: open_store(f"redis://{server}/0?colour=blue"),
        lambda: open_store(f"redis://{server}/0", colour="blue"),
    ):
        with pytest.raises(InvalidParameterError, match="unknown option 'colour'") as caught:
            attempt()
        message = str(caught.value)
        ours, _, driver = message.partition("passed to the driver:")
        assert "prefix" in ours
        assert "max_connections" in ours
        assert "ssl_ca_certs" in driver
        assert "db" in driver
        assert "ssl_ca_certs" not in ours
        assert "decode_responses" not in message


def test_driver_options_refused_with_a_given_client() -> None:
    client = redis_asyncio.Redis()
    with pytest.raises(InvalidParameterError, match="give them to your own client"):
        RedisStore(client=client, db=2)


# -- secrets ----------------------------------------------------------------------------


def test_secret_option_values_never_shown(server: str) -> None:
    secret = "s3cr3t-" + uuid.uuid4().hex
    url = f"rediss://{server}/0?ssl_password={secret}&password={secret}"
    store = open_store(url)
    assert secret not in repr(store)
    assert secret not in store.describe()
    assert secret not in redact_url(url)
    attempts = [
        lambda: open_store(f"{url}&colour=blue"),  # an unknown option after the secrets
        # After a secret, what looks like a bad value may be the rest of it (a raw "&").
        lambda: open_store(f"redis://{server}/0?password={secret}&protocol=x{secret}"),
        lambda: open_store(f"redis://user:{secret}@{server}/0", password="other"),  # given twice
        lambda: open_store(f"redis://{server}/0", password=123),  # not a str
    ]
    for attempt in attempts:
        with pytest.raises(InvalidParameterError) as caught:
            attempt()
        assert secret not in str(caught.value)
        assert "123" not in str(caught.value)


async def test_password_option_authenticates() -> None:
    secret = "pw-" + uuid.uuid4().hex
    with throwaway_redis("--requirepass", secret) as (port, _):
        for options in ({"password": secret}, {}):
            query = "" if options else f"?password={secret}"
            store = open_store(f"redis://127.0.0.1:{port}/0{query}", **options)
            try:
                await store.create_qa_entry("s", "u", "q", "a")
                assert await store.count_qa_entries("s", "u") == 1
                await store.prune()
            finally:
                await store.close()
        for wrong in ({"password": "not-" + secret}, {}):
            store = open_store(f"redis://127.0.0.1:{port}/0?connect_timeout=2", **wrong)
            try:
                with pytest.raises(StoreError, match="refused the credentials") as caught:
                    await store.count_qa_entries("s", "u")
            finally:
                await store.close()
            assert secret not in str(caught.value)

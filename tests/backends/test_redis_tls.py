"""Redis over TLS, for real: throwaway servers with a certificate made for the test.

A CA, a server certificate for ``127.0.0.1`` and ``localhost``, a client
certificate and a second, unrelated CA are made with ``openssl`` in the
pytest temp directory (``tests/certificates.py``). Throwaway ``redis-server``
processes speak only TLS: one verifies no client, one requires a client
certificate, and a three-node Cluster speaks TLS between clients and nodes
and between nodes. Verification is on unless a test turns it off. Under
``CI=true`` a missing ``redis-server``, ``redis-cli`` or ``openssl`` (or a
``redis-server`` built without TLS) is a failure, not a skip.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest

from sessionstore import SessionStore, StoreUnavailableError, open_store
from tests.certificates import KEY_PASSWORD, Certificates, make_certificates
from tests.servers import (
    ServerProcess,
    free_port,
    log_path,
    redis_server_command,
    run_logged,
    tail,
    unavailable,
)

pytest.importorskip("redis.asyncio")

GUARD = 30.0  # a call still running after this would have hung
CLIENT = "redis-client"


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("redis-tls-certs"), [CLIENT])


def _tls_arguments(certs: Certificates, port: int) -> list[str]:
    return [
        "--port",
        "0",  # no plain TCP at all
        "--tls-port",
        str(port),
        "--tls-cert-file",
        str(certs.server_cert),
        "--tls-key-file",
        str(certs.server_key),
        "--tls-ca-cert-file",
        str(certs.ca),
    ]


def _redis_server() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed")
        raise AssertionError("unreachable")
    return binary


def _start(name: str, command: list[str], port: int) -> ServerProcess:
    """Start a server; one that refuses its TLS settings (built without TLS) is unavailable."""
    server = ServerProcess(name, command)
    try:
        server.wait_for_port(port)
    except RuntimeError as exc:
        server.stop()
        if "tls" in str(exc).lower():  # its log names the directive it refused
            unavailable(f"this redis-server does not start with TLS: {exc}")
        raise
    return server


@contextmanager
def tls_redis(certs: Certificates, *, client_certificates: bool) -> Iterator[int]:
    """Run a private ``redis-server`` that speaks only TLS; yield its port."""
    binary = _redis_server()
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        command = redis_server_command(binary, port, workdir, *_tls_arguments(certs, port))
        command += ["--tls-auth-clients", "yes" if client_certificates else "no"]
        server = _start("redis-tls", command, port)
        try:
            yield port
        finally:
            server.stop()


@pytest.fixture(scope="module")
def tls_port(certs: Certificates) -> Iterator[int]:
    """A TLS-only server that asks no client certificate."""
    with tls_redis(certs, client_certificates=False) as port:
        yield port


@pytest.fixture(scope="module")
def mutual_tls_port(certs: Certificates) -> Iterator[int]:
    """A TLS-only server that requires a client certificate signed by the CA."""
    with tls_redis(certs, client_certificates=True) as port:
        yield port


def _prefix() -> str:
    return "tls" + uuid.uuid4().hex[:10]


async def _round_trip(store: SessionStore) -> None:
    """Write and read entries, a graph context and the session list; then prune."""
    try:
        first = await store.create_qa_entry("s", "u", "q1", "a1")
        await store.create_qa_entry("s", "u", "q2", "a2", context="ctx")
        await store.set_graph_context("s", "u", "graph")
        entries = await store.get_all_qa_entries("s", "u")
        assert [(e.question, e.answer) for e in entries] == [("q1", "a1"), ("q2", "a2")]
        assert entries[0].id == first
        assert await store.get_graph_context("s", "u") == "graph"
        page = await store.list_sessions("u")
        assert [(info.session_id, info.qa_count) for info in page.items] == [("s", 2)]
        await store.prune()
        assert await store.count_qa_entries("s", "u") == 0
    finally:
        await store.close()


async def _fails_clearly(url: str, **options: Any) -> StoreUnavailableError:
    """Return the error of a first call that must fail on TLS, quickly and clearly."""
    store = open_store(url, **options)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await asyncio.wait_for(store.count_qa_entries("s", "u"), GUARD)
    finally:
        await store.close()
    assert "ssl_certfile" in str(caught.value)  # says what to check
    return caught.value


async def _fails_verifying(url: str, **options: Any) -> StoreUnavailableError:
    """Return the error of a first call whose check of the server's certificate fails."""
    error = await _fails_clearly(url, **options)
    assert "the TLS connection failed" in str(error)
    assert "ssl_ca_certs" in str(error)
    return error


# -- verification on -------------------------------------------------------------


async def test_verified_tls_round_trip(certs: Certificates, tls_port: int) -> None:
    url = (
        f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={certs.ca}"
        f"&ssl_cert_reqs=required&prefix={_prefix()}"
    )
    await _round_trip(open_store(url))


async def test_host_name_checked_against_the_certificate(
    certs: Certificates, tls_port: int
) -> None:
    prefix = _prefix()
    # "localhost" is in the certificate too; verification on by default (no ssl_cert_reqs).
    await _round_trip(open_store(f"rediss://localhost:{tls_port}", ssl_ca_certs=certs.ca))
    # 127.0.0.2 reaches the same server but is not in its certificate.
    wrong_host = f"rediss://127.0.0.2:{tls_port}/0?prefix={prefix}&ssl_ca_certs={certs.ca}"
    error = await _fails_verifying(wrong_host)
    assert "127.0.0.2" in str(error)
    # Turning the host name check off (still verifying the chain) lets it through.
    await _round_trip(open_store(f"{wrong_host}&ssl_check_hostname=false"))


async def test_keyword_options_and_valkeys_scheme(certs: Certificates, tls_port: int) -> None:
    store = open_store(
        f"valkeys://127.0.0.1:{tls_port}",
        ssl_ca_certs=certs.ca,  # a Path: any path-like is taken
        ssl_cert_reqs="required",
        ssl_min_version="TLSv1_2",
        prefix=_prefix(),
    )
    await _round_trip(store)


async def test_a_wrong_ca_fails_clearly_without_credentials(
    certs: Certificates, tls_port: int
) -> None:
    secret = "pw-" + uuid.uuid4().hex
    url = f"rediss://someone:{secret}@127.0.0.1:{tls_port}/0?ssl_ca_certs={certs.other_ca}"
    started = time.monotonic()
    error = await _fails_verifying(url)
    assert time.monotonic() - started < GUARD
    assert "certificate verify failed" in str(error)
    shown = [str(error), repr(error)]
    assert not any(secret in text for text in shown)


async def test_no_ca_given_means_the_system_ones(certs: Certificates, tls_port: int) -> None:
    """The test CA is in no system store: verification on by default refuses the server."""
    error = await _fails_verifying(f"rediss://127.0.0.1:{tls_port}")
    assert "certificate verify failed" in str(error)


async def test_verification_turned_off_on_request(tls_port: int) -> None:
    await _round_trip(
        open_store(f"rediss://127.0.0.1:{tls_port}?ssl_cert_reqs=none&prefix={_prefix()}")
    )


# -- client certificates --------------------------------------------------------------


async def test_client_certificate_required_by_the_server(
    certs: Certificates, mutual_tls_port: int
) -> None:
    base = f"rediss://127.0.0.1:{mutual_tls_port}/0?ssl_ca_certs={certs.ca}&prefix={_prefix()}"
    # No client certificate: the server ends the handshake, with an alert or without
    # one (TLS 1.3 finishes the client's side first), so the message names both.
    await _fails_clearly(base)
    client = f"&ssl_certfile={certs.client_cert(CLIENT)}&ssl_keyfile={certs.client_key(CLIENT)}"
    await _round_trip(open_store(base + client))


async def test_encrypted_client_key_and_its_password(
    certs: Certificates, mutual_tls_port: int
) -> None:
    url = f"rediss://127.0.0.1:{mutual_tls_port}/0?ssl_ca_certs={certs.ca}&prefix={_prefix()}"
    key = {"ssl_certfile": certs.client_cert(CLIENT), "ssl_keyfile": certs.encrypted_key(CLIENT)}
    await _round_trip(open_store(url, ssl_password=KEY_PASSWORD, **key))
    wrong = "not-" + KEY_PASSWORD
    store = open_store(url, ssl_password=wrong, **key)
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await asyncio.wait_for(store.count_qa_entries("s", "u"), GUARD)
    finally:
        await store.close()
    assert wrong not in str(caught.value)
    assert wrong not in repr(store)


# -- a Cluster over TLS -----------------------------------------------------------------


@contextmanager
def tls_cluster(certs: Certificates, masters: int = 3) -> Iterator[list[int]]:
    """Run a private Cluster whose clients and nodes all speak TLS; yield its ports."""
    binary = _redis_server()
    cli = shutil.which("redis-cli")
    if cli is None:
        unavailable("redis-cli is not installed")
        raise AssertionError("unreachable")
    client_files = [
        "--cert",
        str(certs.client_cert(CLIENT)),
        "--key",
        str(certs.client_key(CLIENT)),
    ]
    tls_cli = [cli, "--tls", "--cacert", str(certs.ca), *client_files]
    with ExitStack() as stack:
        workdir = stack.enter_context(tempfile.TemporaryDirectory(prefix="sessionstore-tls-"))
        ports: list[int] = []
        for i in range(masters):
            port = free_port()
            command = redis_server_command(binary, port, workdir, *_tls_arguments(certs, port))
            command += ["--tls-cluster", "yes", "--tls-replication", "yes"]
            # The nodes' own connections to each other present the client certificate:
            # the server's is for serverAuth only.
            command += ["--tls-client-cert-file", str(certs.client_cert(CLIENT))]
            command += ["--tls-client-key-file", str(certs.client_key(CLIENT))]
            command += ["--cluster-enabled", "yes", "--cluster-port", str(free_port())]
            command += ["--cluster-config-file", f"nodes-{i}.conf", "--dbfilename", f"d{i}.rdb"]
            stack.callback(_start(f"redis-tls-cluster-node-{i}", command, port).stop)
            ports.append(port)
        log = log_path("redis-tls-cluster-create")
        create = [*tls_cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports)]
        run_logged([*create, "--cluster-replicas", "0", "--cluster-yes"], log, timeout=60)
        deadline = time.monotonic() + 30
        while not all(_cluster_ok(tls_cli, port) for port in ports):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the TLS Cluster never reached cluster_state:ok\n{tail(log)}")
            time.sleep(0.1)
        yield ports


def _cluster_ok(tls_cli: list[str], port: int) -> bool:
    done = subprocess.run(
        [*tls_cli, "-p", str(port), "cluster", "info"],
        capture_output=True,
        text=True,
        check=False,
        timeout=5,
    )
    return "cluster_state:ok" in done.stdout


async def test_cluster_over_tls(certs: Certificates) -> None:
    with tls_cluster(certs) as ports:
        client = f"ssl_certfile={certs.client_cert(CLIENT)}&ssl_keyfile={certs.client_key(CLIENT)}"
        url = f"rediss+cluster://127.0.0.1:{ports[0]}?ssl_ca_certs={certs.ca}&{client}"
        store = open_store(f"{url}&prefix={_prefix()}")
        assert "rediss+cluster://" in repr(store)
        for n in range(5):  # sessions spread over the nodes' slots
            await store.create_qa_entry(f"s{n}", "other", "q", "a")
        page = await store.list_sessions("other")
        assert sorted(info.session_id for info in page.items) == [f"s{n}" for n in range(5)]
        await _round_trip(store)  # prunes both users' sessions
        await _fails_verifying(
            f"rediss+cluster://127.0.0.1:{ports[0]}?ssl_ca_certs={certs.other_ca}"
        )


async def test_a_lost_tls_connection_hints_at_certificates() -> None:
    """A server may drop a client whose certificate it refuses without saying why."""
    nobody = f"rediss://127.0.0.1:{free_port()}/0?connect_timeout=2"
    error = await _fails_clearly(nobody)
    assert "unreachable" in str(error)
    plain = open_store(nobody.replace("rediss://", "redis://"))
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            await plain.count_qa_entries("s", "u")
    finally:
        await plain.close()
    assert "ssl_certfile" not in str(caught.value)

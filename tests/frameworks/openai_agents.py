"""Run the OpenAI Agents SDK's own session tests against our session, on every backend.

``make framework-tests`` runs ``python -m tests.frameworks.openai_agents``:

1. it downloads the source distribution of the installed ``openai-agents``
   (``pip download --no-deps --no-binary :all:``) into ``.cache/frameworks/``
   (ignored by git; reused when there), and extracts its ``tests/``;
2. for each backend it runs the SDK's session test modules with pytest,
   from inside the extracted distribution, with our plugin
   (``openai_agents_plugin.py``) replacing ``SQLiteSession`` and
   ``SQLAlchemySession`` in those modules by ``SessionstoreSession`` on that
   backend, a fresh namespace per test;
3. it prints every excluded test with the reason, and exits non-zero if any
   other test fails, errors or is skipped.

The SDK's code is read from the distribution at test time only; none of it
is copied into this repository. Options: ``--backend NAME`` (repeatable) to
run only some backends, ``-k EXPR`` passed on to pytest.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tests.redis_cluster import throwaway_cluster
from tests.servers import server_url

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache" / "frameworks"
PLUGIN_DIR = Path(__file__).resolve().parent
DISTRIBUTION = "openai-agents"

BACKENDS = ("redis-cluster", "postgresql", "mariadb", "redis", "files", "sqlite", "memory")
"""Slowest first: they start first."""
PARALLEL = 3
"""Backends run at once. More makes each test slower, and a few SDK tests have timeouts."""

TEST_MODULES = (
    "tests/memory/test_session.py",
    "tests/memory/test_session_limit.py",
    "tests/extensions/memory/test_sqlalchemy_session.py",
    "tests/extensions/memory/test_encrypt_session.py",
)
"""The SDK's tests of the ``Session`` protocol that build a SQLite or SQLAlchemy session."""

_SQLITE_INTERNALS = "inspects SQLiteSession internals (its sqlite3 connections, locks, tables)"
_SQLALCHEMY_INTERNALS = (
    "inspects SQLAlchemySession internals (its engine, tables, statements or session factory)"
)
_CORRUPT_ROWS = (
    "writes a row of invalid JSON into the SDK session's table; our stores hold only valid JSON"
)
_STORED_TEXT = (
    "reads the JSON text in SQLAlchemySession's table (escaped or not); ours returns items "
    "exactly either way"
)
_TIMESTAMP_ORDER = (
    "rewrites created_at in SQLAlchemySession's table or inspects its ORDER BY; our order is "
    "a per-session sequence, never a time"
)
_SQLITE_CLOSE = (
    "SQLiteSession.close() closes its own database; ours closes only a store it opened from "
    "a URL (a closed store raises StoreError, not RuntimeError('SQLiteSession is closed'))"
)
_SQLITE_ONLY_POP = (
    "EncryptedSession authenticates an item before popping it only when its underlying "
    "session is the SDK's own SQLiteSession (its pop_item docstring); on any other session "
    "it pops, then decrypts"
)
_SNAPSHOT_HOOK = (
    "needs the SDK's private compaction snapshot hook (_get_compaction_snapshot), which only "
    "its own SQLite and SQLAlchemy sessions offer"
)
_OTHER_SESSION = "builds the SDK's RedisSession on fakeredis: no session of ours is involved"
_PRIVATE_HELPER = "tests the SDK's private _await_mutation helper, not a session"

EXCLUDED: dict[str, dict[str, str]] = {
    "tests/memory/test_session.py": {
        "test_await_mutation_cancellation_hides_later_failure_without_loop_error": (
            _PRIVATE_HELPER
        ),
        "test_sqlite_session_close_closes_worker_thread_connections": _SQLITE_INTERNALS,
        "test_sqlite_session_reaps_connections_from_exited_worker_threads": _SQLITE_INTERNALS,
        "test_sqlite_session_closes_retired_connections_before_the_next_allocation": (
            _SQLITE_INTERNALS
        ),
        "test_sqlite_session_keeps_connections_of_live_worker_threads": _SQLITE_INTERNALS,
        "test_sqlite_session_closed_rejects_empty_add_items": _SQLITE_CLOSE,
        "test_sqlite_session_pop_item_skips_corrupt_most_recent": _CORRUPT_ROWS,
        "test_sqlite_session_pop_item_returns_none_after_dropping_only_corrupt_rows": (
            _CORRUPT_ROWS
        ),
        "test_sqlite_session_get_items_limit_skips_corrupt_newest_rows": _CORRUPT_ROWS,
        "test_sqlite_session_get_items_session_settings_limit_skips_corrupt_rows": _CORRUPT_ROWS,
        "test_sqlite_session_file_lock_is_shared_across_instances": _SQLITE_INTERNALS,
        "test_sqlite_session_failed_add_items_releases_write_lock": _SQLITE_INTERNALS,
        "test_sqlite_session_failed_clear_session_rolls_back": _SQLITE_INTERNALS,
        "test_sqlite_session_failed_pop_item_releases_write_lock": _SQLITE_INTERNALS,
        "test_sqlite_session_rollback_failure_evicts_connection": _SQLITE_INTERNALS,
        "test_sqlite_session_close_retries_quarantined_connection": _SQLITE_INTERNALS,
        "test_sqlite_session_post_commit_cancellation_propagates_after_known_outcome": (
            _SQLITE_INTERNALS
        ),
    },
    "tests/extensions/memory/test_sqlalchemy_session.py": {
        "test_sqlalchemy_session_defaults_to_escaped_non_ascii_storage": _STORED_TEXT,
        "test_sqlalchemy_session_can_store_non_ascii_without_escaping": _STORED_TEXT,
        "test_sqlite_fallback_reserves_writer_before_tail_claim": _SQLALCHEMY_INTERNALS,
        "test_pop_item_supports_unknown_delete_rowcount": _SQLALCHEMY_INTERNALS,
        "test_pop_item_retries_returning_claim_lost_to_concurrent_delete": _SQLALCHEMY_INTERNALS,
        "test_mutation_cancellation_waits_for_transaction_exit": _SQLALCHEMY_INTERNALS,
        "test_pop_item_skips_corrupt_most_recent": _CORRUPT_ROWS,
        "test_get_items_limit_skips_corrupt_newest_rows": _CORRUPT_ROWS,
        "test_pop_item_returns_none_after_dropping_only_corrupt_rows": _CORRUPT_ROWS,
        "test_add_items_waits_for_transient_sqlite_write_lock": _SQLALCHEMY_INTERNALS,
        "test_add_items_cancelled_waiter_does_not_strand_table_init_lock": _SQLALCHEMY_INTERNALS,
        "test_create_tables_false_does_not_allocate_shared_init_lock": _SQLALCHEMY_INTERNALS,
        "test_get_items_same_timestamp_consistent_order": _TIMESTAMP_ORDER,
        "test_pop_item_same_timestamp_returns_latest": _TIMESTAMP_ORDER,
        "test_get_items_orders_by_id_for_ties": _TIMESTAMP_ORDER,
        "test_engine_property_from_url": _SQLALCHEMY_INTERNALS,
        "test_engine_property_from_external_engine": _SQLALCHEMY_INTERNALS,
        "test_engine_property_is_read_only": _SQLALCHEMY_INTERNALS,
        "test_sqlite_configuration_registry_releases_collected_engines": _SQLALCHEMY_INTERNALS,
        "test_sqlite_configuration_registry_does_not_grow_unbounded": _SQLALCHEMY_INTERNALS,
    },
    "tests/extensions/memory/test_encrypt_session.py": {
        "test_encrypted_compaction_skips_unencrypted_stored_history": _SNAPSHOT_HOOK,
        "test_encrypted_pop_wrong_key_preserves_recoverable_history": _SQLITE_ONLY_POP,
        "test_encrypted_pop_rechecks_authentication_after_expired_tail": _SQLITE_ONLY_POP,
        "test_encrypted_pop_authentication_is_atomic_with_concurrent_mutations": _SQLITE_ONLY_POP,
        "test_encrypted_pop_wrong_key_preserves_row_identity": _SQLITE_ONLY_POP,
        "test_encrypted_pop_cancellation_waits_for_authentication_rollback": _SQLITE_ONLY_POP,
        "test_encrypted_session_scan_budget_does_not_turn_redis_negative_limit_into_history": (
            _OTHER_SESSION
        ),
    },
}
"""SDK tests left out: module -> test name -> the reason (all its parametrizations)."""


def sdist_tests() -> Path:
    """The extracted source distribution of the installed SDK (downloaded once)."""
    version = importlib.metadata.version(DISTRIBUTION)
    name = f"openai_agents-{version}"
    extracted = CACHE / name
    if (extracted / ".complete").exists():
        return extracted
    CACHE.mkdir(parents=True, exist_ok=True)
    archive = CACHE / f"{name}.tar.gz"
    if not archive.exists():
        print(f"downloading the {DISTRIBUTION}=={version} source distribution", flush=True)
        subprocess.run(
            [
                *(sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"),
                *("--no-binary", ":all:", f"{DISTRIBUTION}=={version}", "--dest", str(CACHE)),
            ],
            check=True,
        )
    with tarfile.open(archive) as tar:
        wanted = [
            m
            for m in tar.getmembers()
            if m.name.startswith((f"{name}/tests/", f"{name}/pyproject"))
        ]
        tar.extractall(CACHE, members=wanted, filter="data")
    (extracted / ".complete").touch()
    return extracted


@contextmanager
def server_urls(backends: list[str]) -> Iterator[dict[str, str]]:
    """The server of each backend that needs one; a throwaway Redis Cluster if asked."""
    with ExitStack() as stack:
        urls = {
            b: server_url("redis" if b == "redis" else b)
            for b in backends
            if b in ("redis", "postgresql", "mariadb")
        }
        if "redis-cluster" in backends:
            ports = stack.enter_context(throwaway_cluster())
            urls["redis-cluster"] = f"redis+cluster://127.0.0.1:{ports[0]}"
        yield urls


def pytest_command(extra: list[str]) -> list[str]:
    deselect = [
        arg
        for module, names in EXCLUDED.items()
        for name in names
        for arg in ("--deselect", f"{module}::{name}")
    ]
    return [
        sys.executable, "-m", "pytest", *TEST_MODULES,
        "-p", "openai_agents_plugin", "-p", "no:randomly", "-p", "no:cacheprovider",
        "-c", "pyproject.toml", "--rootdir", ".", "-q", "--timeout", "120",
        "-o", "console_output_style=classic", *deselect, *extra,
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=BACKENDS)
    parser.add_argument("-k", dest="keyword")
    args = parser.parse_args(argv)
    backends = args.backend or list(BACKENDS)
    extra = ["-k", args.keyword] if args.keyword else []

    sdist = sdist_tests()
    print(f"The {DISTRIBUTION} test modules run against SessionstoreSession:")
    for module in TEST_MODULES:
        print(f"  {module}")
    print(f"Excluded ({sum(map(len, EXCLUDED.values()))} tests), with the reason for each:")
    for module, names in EXCLUDED.items():
        for name, reason in names.items():
            print(f"  {module}::{name}\n      {reason}")
    started = time.monotonic()
    with server_urls(backends) as urls, ThreadPoolExecutor(PARALLEL) as pool:
        runs = {b: pool.submit(run_backend, b, urls.get(b, ""), sdist, extra) for b in backends}
        failed = []
        for backend, run in runs.items():
            code, output = run.result()
            print(f"\n=== {backend}: pytest exited with {code} ===\n{output.rstrip()}")
            if code != 0:
                failed.append(backend)
    took = time.monotonic() - started
    if failed:
        print(f"\nFAILED on: {', '.join(failed)} ({took:.0f} s)")
        return 1
    print(f"\nThe SDK's session tests pass on: {', '.join(backends)} ({took:.0f} s)")
    return 0


def run_backend(backend: str, server: str, sdist: Path, extra: list[str]) -> tuple[int, str]:
    """Run the SDK's test modules on ``backend``; pytest's exit code and output."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PLUGIN_DIR), os.environ.get("PYTHONPATH", "")]),
        "SESSIONSTORE_AGENTS_BACKEND": backend,
        "SESSIONSTORE_AGENTS_SERVER_URL": server,
    }
    done = subprocess.run(
        pytest_command(extra),
        cwd=sdist,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    return done.returncode, done.stdout


if __name__ == "__main__":
    sys.exit(main())

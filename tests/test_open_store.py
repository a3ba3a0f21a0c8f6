"""open_store: schemes, options, the registry, extras and credential redaction."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

import sessionstore
from sessionstore import (
    InvalidParameterError,
    MissingDependencyError,
    SessionError,
    SessionStore,
    StoreError,
    StoreUnavailableError,
    open_store,
    register_backend,
    urls,
)
from sessionstore.backends.memory import MemoryStore
from sessionstore.extras import EXTRAS, require
from sessionstore.urls import redact_url


def test_unknown_scheme_lists_the_valid_ones() -> None:
    with pytest.raises(InvalidParameterError, match=r"valid schemes: .*memory.*sqlite"):
        open_store("nosuch://x")
    with pytest.raises(InvalidParameterError, match="scheme://"):
        open_store("just-a-path.db")


def test_unknown_option_lists_the_valid_ones() -> None:
    with pytest.raises(
        InvalidParameterError, match="valid options: max_field_bytes, otel_ids, slow_call_ms, ttl"
    ):
        open_store("memory://", colour="blue")
    with pytest.raises(InvalidParameterError, match="unknown option 'colour'"):
        open_store("memory://?colour=blue")
    with pytest.raises(InvalidParameterError, match="max_field_bytes"):
        open_store("memory://?max_field_bytes=lots")


def test_keyword_options_win_over_url_options() -> None:
    store = open_store("memory://?ttl=10&max_field_bytes=99", ttl=20)
    assert store.ttl == 20
    assert store.max_field_bytes == 99
    assert open_store("memory://?ttl=none").ttl is None


def test_register_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(urls, "_REGISTRY", dict(urls._REGISTRY))
    seen: list[tuple[str, dict[str, Any]]] = []

    def factory(url: str, /, **options: Any) -> SessionStore:
        seen.append((url, options))
        return MemoryStore(**options)

    register_backend("mystore", factory)
    store = open_store("mystore://anything", ttl=5)
    assert isinstance(store, MemoryStore)
    assert seen == [("mystore://anything", {"ttl": 5})]
    with pytest.raises(InvalidParameterError):
        register_backend("bad:name", factory)
    with pytest.raises(InvalidParameterError):
        register_backend("ok", "not callable")  # type: ignore[arg-type]


def test_register_backend_replaces_a_scheme_only_when_asked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(urls, "_REGISTRY", dict(urls._REGISTRY))

    def factory(url: str, /, **options: Any) -> SessionStore:
        return MemoryStore(**options)

    register_backend("mystore", factory)
    for taken in ("MyStore", "sqlite", "redis"):
        with pytest.raises(InvalidParameterError, match="already registered"):
            register_backend(taken, factory)
    assert not isinstance(open_store("sqlite:///x.db"), MemoryStore)
    register_backend("sqlite", factory, replace=True)
    assert isinstance(open_store("sqlite:///x.db"), MemoryStore)


def test_extras_table_matches_the_package_metadata() -> None:
    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    optional = declared["project"]["optional-dependencies"]
    assert set(EXTRAS) == set(optional) - {"all", "integrations", "bench", "dev", "test"}
    for extra, packages in EXTRAS.items():
        named = " ".join(optional[extra]).lower()
        modules = [p.replace(".", "-").replace("_", "-") for p in packages if p != "greenlet"]
        assert all(module in named for module in modules), extra
    with pytest.raises(KeyError, match="not an extra"):
        require("json", "no-such-extra")


def test_missing_extra_names_the_install_command() -> None:
    with pytest.raises(MissingDependencyError, match=r"pip install 'sessionstore\[redis\]'"):
        require("surely_not_installed_module_xyz", "redis")
    error = MissingDependencyError("asyncpg", "postgres")
    assert isinstance(error, ImportError)
    assert isinstance(error, SessionError)


def test_error_tree() -> None:
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(StoreUnavailableError, StoreError)
    assert issubclass(StoreError, SessionError)
    assert issubclass(sessionstore.NotFoundError, LookupError)


@pytest.mark.parametrize(
    ("url", "hidden"),
    [
        ("redis://:hunter2@host:6379/0", "hunter2"),
        ("postgresql://user:hunter2@db/app?sslmode=require", "hunter2"),
        ("mysql://root:hunter2@db/app?password=hunter2", "hunter2"),
    ],
)
def test_redact_url_hides_passwords(url: str, hidden: str) -> None:
    redacted = redact_url(url)
    assert hidden not in redacted
    assert "***" in redacted


def test_errors_about_urls_hide_passwords() -> None:
    with pytest.raises(InvalidParameterError) as info:
        open_store("nosuch://user:hunter2@host/db")
    assert "hunter2" not in str(info.value)
    with pytest.raises(InvalidParameterError) as info:
        open_store("memory://?password=hunter2&bogus=1")
    assert "hunter2" not in str(info.value)


def test_import_loads_no_optional_dependency() -> None:
    code = (
        "import sys, sessionstore\n"
        "heavy = {'redis', 'sqlalchemy', 'asyncpg', 'asyncmy', 'typer', 'rich', 'click'}\n"
        "print(sorted(heavy & {m.split('.')[0] for m in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_public_names_are_exported() -> None:
    assert len(sessionstore.__all__) == len(set(sessionstore.__all__))
    for name in sessionstore.__all__:
        assert hasattr(sessionstore, name)

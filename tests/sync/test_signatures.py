"""Every public method of the async store and manager has a blocking twin, same signature.

A method added to ``SessionStore`` or ``SessionManager`` without one in
``sessionstore.sync`` fails here. The only differences allowed are listed in
``CHANGED``: async iterators become plain ones, and the blocking manager takes
the blocking store.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any

import pytest

import sessionstore
from sessionstore import sync

PAIRS = [
    (sessionstore.SessionStore, sync.SessionStore),
    (sessionstore.SessionManager, sync.SessionManager),
]

# Compared too: the blocking manager is built like the async one. (The blocking
# store is built on an async store, not like one: its __init__ differs.)
ALSO_COMPARED = {"SessionManager": ["__init__"]}

# (class name, method, parameter or "return") -> (async annotation, blocking annotation)
CHANGED: dict[tuple[str, str, str], tuple[Any, Any]] = {
    ("SessionStore", "export_sessions", "return"): (
        AsyncIterator[dict[str, Any]],
        Iterator[dict[str, Any]],
    ),
    ("SessionStore", "import_sessions", "dumps"): (
        Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        Iterable[Mapping[str, Any]],
    ),
    ("SessionManager", "improve_lock", "return"): (AsyncIterator[bool], Iterator[bool]),
    ("SessionManager", "__init__", "store"): (sessionstore.SessionStore, sync.SessionStore),
}


def _public_methods(cls: type) -> list[str]:
    return sorted(
        name
        for name, member in inspect.getmembers(cls, callable)
        if not name.startswith("_") and not isinstance(member, type)
    )


def _signature(function: Callable[..., Any]) -> inspect.Signature:
    return inspect.signature(inspect.unwrap(function), eval_str=True)


def _described(cls_name: str, method: str, signature: inspect.Signature) -> list[Any]:
    """The signature as comparable values, with the allowed differences replaced."""
    described: list[Any] = []
    for parameter in signature.parameters.values():
        changed = CHANGED.get((cls_name, method, parameter.name))
        annotation = "changed" if changed else parameter.annotation
        described.append((parameter.name, parameter.kind, parameter.default, annotation))
    changed = CHANGED.get((cls_name, method, "return"))
    described.append(("return", "changed" if changed else signature.return_annotation))
    return described


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda cls: cls.__module__)
def test_every_public_method_has_a_blocking_twin(async_cls: type, sync_cls: type) -> None:
    missing = set(_public_methods(async_cls)) - set(_public_methods(sync_cls))
    assert not missing, f"no blocking twin in sessionstore.sync for {sorted(missing)}"


@pytest.mark.parametrize(("async_cls", "sync_cls"), PAIRS, ids=lambda cls: cls.__module__)
def test_signatures_match(async_cls: type, sync_cls: type) -> None:
    for method in [*_public_methods(async_cls), *ALSO_COMPARED.get(async_cls.__name__, [])]:
        async_signature = _signature(getattr(async_cls, method))
        sync_signature = _signature(getattr(sync_cls, method))
        assert _described(async_cls.__name__, method, async_signature) == _described(
            async_cls.__name__, method, sync_signature
        ), method


def test_the_allowed_differences_are_real() -> None:
    """Each entry of CHANGED names a real parameter whose annotations are as listed."""
    classes = dict(PAIRS)
    for (cls_name, method, part), expected in CHANGED.items():
        async_cls = next(cls for cls in classes if cls.__name__ == cls_name)
        found = []
        for cls in (async_cls, classes[async_cls]):
            signature = _signature(getattr(cls, method))
            if part == "return":
                found.append(signature.return_annotation)
            else:
                found.append(signature.parameters[part].annotation)
        assert tuple(found) == expected, (cls_name, method, part)


def test_the_blocking_store_is_a_context_manager() -> None:
    assert callable(sync.SessionStore.__enter__)
    assert list(_signature(sync.SessionStore.__exit__).parameters) == list(
        _signature(sessionstore.SessionStore.__aexit__).parameters
    )


def test_blocking_methods_are_not_coroutines() -> None:
    for _, sync_cls in PAIRS:
        for method in _public_methods(sync_cls):
            assert not inspect.iscoroutinefunction(getattr(sync_cls, method)), method


def test_the_blocking_open_store_mirrors_open_store() -> None:
    assert (
        _described("", "open_store", _signature(sessionstore.open_store))[:-1]
        == (_described("", "open_store", _signature(sync.open_store))[:-1])
    )
    assert _signature(sync.open_store).return_annotation is sync.SessionStore

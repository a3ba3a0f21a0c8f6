"""The matrix itself: every known gap names a test that exists."""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

from tests.contract.cases import CASES, BackendCase

TESTS = Path(__file__).resolve().parents[1]


def defined_tests(root: Path) -> set[str]:
    """Return the name of every test function in the test files under ``root``."""
    return {
        node.name
        for path in root.rglob("test_*.py")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.name.startswith("test_")
    }


def unknown_gaps(cases: Iterable[BackendCase], names: set[str]) -> list[str]:
    """Return ``case: gap`` for every gap that names no test, or gives no reason."""
    return [
        f"{case.name}: {gap}"
        for case in cases
        for gap, reason in case.gaps.items()
        if gap not in names or not reason.strip()
    ]


def test_every_gap_names_a_real_test() -> None:
    assert unknown_gaps(CASES, defined_tests(TESTS)) == []


def test_a_gap_naming_no_test_is_reported() -> None:
    names = defined_tests(TESTS)
    assert "test_every_gap_names_a_real_test" in names
    assert "test_entries_keep_creation_order" in names
    case = BackendCase(
        "made-up",
        lambda ctx: "memory://",
        gaps={
            "test_entries_keep_creation_order": "a real test",
            "test_entries_keep_creaton_order": "a typo",
            "test_delete_entry": " ",
        },
    )
    assert unknown_gaps([case], names) == [
        "made-up: test_entries_keep_creaton_order",
        "made-up: test_delete_entry",
    ]

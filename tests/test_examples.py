"""The example a new user reads first must run and print what it recorded.

The snippets of README.md and docs/ run in tests/test_docs_snippets.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_records_and_prints_a_conversation(tmp_path: Path) -> None:
    env = {**os.environ, "SESSIONSTORE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    for _ in range(2):  # a second run starts clean instead of piling up turns
        result = subprocess.run(
            [sys.executable, str(ROOT / "examples" / "quickstart.py")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    out = result.stdout
    assert out.count("Q: ") == 3
    assert "[feedback 5/5]" in out
    assert "trace: search_docs -> success" in out
    assert "sessions of demo-user: [('quickstart', 3)]" in out
    assert (tmp_path / "demo.db").exists()

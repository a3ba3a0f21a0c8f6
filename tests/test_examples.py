"""The example a new user reads first must run and print what it recorded."""

from __future__ import annotations

import os
import re
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


def test_readme_api_tour_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    tour = re.search(r"## A tour of the API\n\n```python\n(.*?)```", readme, re.DOTALL)
    assert tour is not None
    script = tmp_path / "tour.py"
    script.write_text(tour.group(1), encoding="utf-8")
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, timeout=60)
    assert (tmp_path / "memory.db").exists()


def test_manager_doc_examples_run(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "manager.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", doc, re.DOTALL) if "asyncio.run(" in b]
    assert len(blocks) >= 2
    for number, block in enumerate(blocks):
        script = tmp_path / f"example_{number}.py"
        script.write_text(block, encoding="utf-8")
        subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, timeout=60)
    assert (tmp_path / "memory.db").exists()

"""The runnable examples of docs/sync.md and the README's blocking section run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, re.DOTALL)


def test_sync_doc_examples_run(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "sync.md").read_text(encoding="utf-8")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## From sync code", 1)[1].split("\n## ", 1)[0]
    # The framework examples need Flask, Django or Celery; the runnable ones print.
    blocks = [b for b in _python_blocks(doc) + _python_blocks(section) if "print(" in b]
    assert len(blocks) == 4
    for number, block in enumerate(blocks):
        script = tmp_path / f"example_{number}.py"
        script.write_text(block, encoding="utf-8")
        finished = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert (finished.returncode, finished.stderr) == (0, ""), block
    assert (tmp_path / "memory.db").exists()

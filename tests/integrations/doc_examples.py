"""Run the ``python`` examples of a docs page, each as a script, in one directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_examples(page: str, directory: Path) -> list[str]:
    """Run every ``python`` block of ``docs/<page>`` in order; return what each printed."""
    doc = (ROOT / "docs" / page).read_text(encoding="utf-8")
    outputs = []
    for number, block in enumerate(re.findall(r"```python\n(.*?)```", doc, re.DOTALL)):
        script = directory / f"example_{number}.py"
        script.write_text(block, encoding="utf-8")
        finished = subprocess.run(
            [sys.executable, str(script)],
            cwd=directory,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert finished.returncode == 0, finished.stderr
        outputs.append(finished.stdout)
    return outputs


def run(command: list[str], cwd: Path) -> str:
    """Run ``command`` in ``cwd`` with a wide terminal and UTF-8 output; return its stdout."""
    done = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "COLUMNS": "1000", "PYTHONIOENCODING": "utf-8"},
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout

"""Run the ``python`` examples of a docs page, each as a script, in one directory."""

from __future__ import annotations

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

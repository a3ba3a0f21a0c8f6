"""The runnable examples of docs/items.md run and print what they promise."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_items_doc_examples_run(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "items.md").read_text(encoding="utf-8")
    blocks = [b for b in re.findall(r"```python\n(.*?)```", doc, re.DOTALL) if "asyncio.run(" in b]
    assert len(blocks) == 2
    outputs = []
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
        assert finished.returncode == 0, finished.stderr
        outputs.append(finished.stdout)
    assert outputs[0].splitlines() == [
        "2 1 {'role': 'assistant', 'content': '18C and sunny.'} {'city': 'Paris'} 1",
        "stale: 0 but the state is at 1",
    ]
    assert outputs[1].splitlines() == [
        "refused: reload the session and run the turn again",
        "1 {'greeted': True} {'name': 'Alice'}",
    ]

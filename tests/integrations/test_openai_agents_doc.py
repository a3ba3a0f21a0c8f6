"""docs/integrations/openai-agents.md: its example runs, prints what the page says, and the
CLI command it shows prints the stored items the page shows."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

from tests.integrations.doc_examples import ROOT, run

DOC = ROOT / "docs" / "integrations" / "openai-agents.md"
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


def test_the_example_runs_and_the_cli_shows_its_history(tmp_path: Path) -> None:
    doc = DOC.read_text(encoding="utf-8")
    examples = [
        b for b in re.findall(r"```python\n(.*?)```", doc, re.DOTALL) if "ScriptedModel(" in b
    ]
    assert len(examples) == 1
    texts = re.findall(r"```text\n(.*?)```", doc, re.DOTALL)
    script = tmp_path / "example.py"
    script.write_text(examples[0], encoding="utf-8")

    printed = run([sys.executable, str(script)], tmp_path)
    assert printed == texts[0]

    (shell,) = re.findall(r"^(sessionstore --store .*)$", doc, re.MULTILINE)
    shown = run([sys.executable, "-m", "sessionstore.cli", *shlex.split(shell)[1:]], tmp_path)
    promised = [line for line in texts[1].splitlines() if line != "..."]
    assert len(promised) == 4
    assert TIME.sub("T", shown).splitlines()[:4] == [TIME.sub("T", line) for line in promised]
    assert "item #8" in shown

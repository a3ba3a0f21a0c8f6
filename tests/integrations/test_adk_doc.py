"""docs/integrations/adk.md runs as written; the extra is imported only when asked for."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

from tests.integrations.doc_examples import ROOT, run

DOC = ROOT / "docs" / "integrations" / "adk.md"
TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
UPDATE_TIME = re.compile(r'"m:update_time": [0-9.e+]+')


def test_the_example_prints_what_the_page_says_and_the_cli_shows_it(tmp_path: Path) -> None:
    doc = DOC.read_text(encoding="utf-8")
    examples = [
        b for b in re.findall(r"```python\n(.*?)```", doc, re.DOTALL) if "asyncio.run(" in b
    ]
    assert len(examples) == 1
    texts = re.findall(r"```text\n(.*?)```", doc, re.DOTALL)
    script = tmp_path / "example.py"
    script.write_text(examples[0], encoding="utf-8")
    assert run([sys.executable, str(script)], tmp_path) == texts[0]

    (shell,) = re.findall(r"^(sessionstore --store .*)$", doc, re.MULTILINE)
    shown = run([sys.executable, "-m", "sessionstore.cli", *shlex.split(shell)[1:]], tmp_path)
    promised = texts[1].splitlines()
    lines = shown.splitlines()
    assert len(lines) == len(promised) == 5
    assert lines[0] == promised[0]
    for line, expected in zip(lines[1:4], promised[1:4], strict=True):
        assert TIME.sub("T", line).startswith(TIME.sub("T", expected).removesuffix(" ...}"))
    assert UPDATE_TIME.sub("T", lines[4]) == UPDATE_TIME.sub("T", promised[4])


def test_a_missing_adk_says_which_extra_to_install() -> None:
    code = (
        "import sys\n"
        "sys.modules['google.adk'] = None\n"
        "import sessionstore\n"
        "from sessionstore import MissingDependencyError\n"
        "try:\n"
        "    import sessionstore.integrations.adk\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "pip install 'sessionstore[adk]'" in done.stdout


def test_importing_sessionstore_does_not_import_adk() -> None:
    code = (
        "import sys\n"
        "import sessionstore, sessionstore.integrations\n"
        "print(sorted(m for m in sys.modules if m.startswith('google.adk')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"

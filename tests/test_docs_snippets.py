"""README.md and docs/: each Python block runs as pasted, each command exists, each link resolves.

The conventions (stated for writers in docs/contributing.md, "Writing docs"):

- a ``python`` block is a complete program: it runs with ``python``, in a fresh
  temporary directory, against the servers on localhost, and exits 0 with no
  traceback or unclosed resource on stderr;
- a ``python no-run`` block is shown for its shape (a signature, code that needs
  a provider's server, an API key or a web framework): it must parse, and each
  page's number of them is listed in ``NO_RUN`` so that none goes unnoticed;
- ``text`` and ``json`` blocks are output, layouts and formats;
- ``sh`` and ``console`` blocks (and indented blocks of ``$ `` lines) are not
  run, but every ``sessionstore ...`` command in them must parse as the CLI's.

Snippets that write to Redis, PostgreSQL or MariaDB do it under one of the
namespaces in ``REDIS_PREFIXES`` / ``TABLE_PREFIXES``, which this module empties
before and after running them.
"""

from __future__ import annotations

import ast
import asyncio
import importlib
import io
import os
import re
import shlex
import subprocess
import sys
import tokenize
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import typer.main
from markdown_it import MarkdownIt
from typer.testing import CliRunner

from sessionstore import open_store
from sessionstore.cli.app import app
from tests.servers import reachable, unavailable

if TYPE_CHECKING:
    from markdown_it.token import Token

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in ROOT.glob("docs/**/*.md"))]
TIMEOUT = 180  # seconds per program; the framework examples import a lot on a busy machine

FENCES = {"python", "python no-run", "text", "json", "sh", "console"}
SHELL_FENCES = {"sh", "console"}

# Blocks shown for their shape, page by page; a new one must be added here, with why.
NO_RUN = {
    "README.md": 1,  # the OpenAI Agents SDK one-liner: calls OpenAI's API
    "docs/backends/redis.md": 1,  # a managed Redis over TLS: the provider's server and CA
    "docs/backends/sql.md": 2,  # a managed PostgreSQL, a managed MySQL: the same
    "docs/connections.md": 1,  # the three managed databases
    "docs/integrations/openai-agents.md": 1,  # the two-line shape: calls OpenAI's API
    "docs/manager.md": 1,  # the LLM protocol's signature
    "docs/sync.md": 4,  # Flask, Django (two files), Celery: not dependencies of sessionstore
}

# The servers the snippets use, and the namespaces they may write under.
REDIS_URL = "redis://localhost:6379/0"
SQL_URLS = ("postgresql://postgres@localhost:5432/test", "mariadb://root@localhost:3306/test")
REDIS_PREFIXES = {"myapp"}
TABLE_PREFIXES = {"memory_"}
SCHEMES = {
    "redis": REDIS_URL,
    "rediss": REDIS_URL,
    "valkey": REDIS_URL,
    "postgresql": SQL_URLS[0],
    "postgresql+asyncpg": SQL_URLS[0],
    "mysql": SQL_URLS[1],
    "mariadb": SQL_URLS[1],
}

# What a program prints, where the page says so: (page, a line of the block) -> stdout.
OUTPUTS = {
    ("docs/items.md", "except ConflictError as exc:"): [
        "2 1 {'role': 'assistant', 'content': '18C and sunny.'} {'city': 'Paris'} 1",
        "stale: 0 but the state is at 1",
    ],
    ("docs/items.md", "async def append_event("): [
        "refused: reload the session and run the turn again",
        "1 {'greeted': True} {'name': 'Alice'}",
    ],
}
# On stderr, any of these means the program failed even if it exited 0.
BAD_STDERR = ("Traceback", "never awaited", "ResourceWarning", "Exception ignored", "Unclosed")


@dataclass(frozen=True)
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    info: str  # "" for an indented block
    code: str

    @property
    def name(self) -> str:
        return f"{self.page}:{self.line}"


@cache
def parsed(page: str) -> list[Token]:
    return MarkdownIt("commonmark").enable("table").parse((ROOT / page).read_text("utf-8"))


@cache
def blocks() -> list[Block]:
    found = []
    for page in PAGES:
        for token in parsed(page):
            if token.type in {"fence", "code_block"}:
                assert token.map is not None
                info = " ".join(token.info.split())
                found.append(Block(page, token.map[0] + 1, info, token.content))
    return found


def python_blocks(info: str) -> list[Block]:
    return [block for block in blocks() if block.info == info]


def is_console(block: Block) -> bool:
    lines = [line for line in block.code.splitlines() if line.strip()]
    return block.info == "" and all(line.startswith("$ ") for line in lines)


# -- the blocks ------------------------------------------------------------------------


def test_every_block_is_fenced_with_a_known_kind() -> None:
    wrong = [
        f"{b.name}: {b.info or 'indented'!r}"
        for b in blocks()
        if b.info not in FENCES and not is_console(b)
    ]
    assert wrong == [], f"fence these as one of {sorted(FENCES)}"
    assert len(python_blocks("python")) >= 30


def test_the_blocks_not_run_are_the_ones_listed_parse_and_import_what_exists() -> None:
    shown = python_blocks("python no-run")
    assert Counter(block.page for block in shown) == NO_RUN
    for block in shown:
        flags = ast.PyCF_ONLY_AST | ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
        tree = compile(block.code, block.name, "exec", flags=flags)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sessionstore"):
                module = importlib.import_module(node.module or "")
                missing = [a.name for a in node.names if not hasattr(module, a.name)]
                assert missing == [], f"{block.name}: {node.module} has no {missing}"


def string_literals(code: str) -> Iterator[str]:
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.STRING:
            try:
                value = ast.literal_eval(token.string)
            except ValueError:  # an f-string
                continue
            if isinstance(value, str):
                yield value


def servers_of(block: Block) -> set[str]:
    """The local servers the program talks to; fails on one outside the cleaned namespaces."""
    servers = set()
    for text in string_literals(block.code):
        scheme, _, _ = text.partition("://")
        if scheme not in SCHEMES:
            continue
        servers.add(SCHEMES[scheme])
        query = parse_qs(urlsplit(text).query)
        if scheme.startswith(("redis", "valkey")):
            assert query.get("prefix", [None])[0] in REDIS_PREFIXES, f"{block.name}: {text}"
        elif "table_prefix" in query:
            assert query["table_prefix"][0] in TABLE_PREFIXES, f"{block.name}: {text}"
        else:  # an engine URL: the store built on it names the prefix
            assert "table_prefix=" in block.code, f"{block.name}: {text}"
    for name, value in re.findall(r"\b(prefix|table_prefix)=\"([^\"]*)\"", block.code):
        assert value in (REDIS_PREFIXES if name == "prefix" else TABLE_PREFIXES), block.name
    return servers


async def empty_the_namespaces() -> None:
    if reachable(REDIS_URL):
        for prefix in REDIS_PREFIXES:
            async with open_store(REDIS_URL, prefix=prefix) as store:
                await store.prune()
    for url in SQL_URLS:
        if reachable(url):
            for table_prefix in TABLE_PREFIXES:
                async with open_store(url, table_prefix=table_prefix) as store:
                    await store.drop_tables()  # the SQL store's own call


@pytest.fixture
def clean_servers() -> Iterator[None]:
    """Each program starts on empty namespaces, as a reader's first run does."""
    asyncio.run(empty_the_namespaces())
    yield
    asyncio.run(empty_the_namespaces())


@pytest.mark.parametrize("block", python_blocks("python"), ids=lambda block: block.name)
def test_the_program_runs_as_pasted(block: Block, tmp_path: Path, clean_servers: None) -> None:
    for url in sorted(servers_of(block)):
        if not reachable(url):
            unavailable(f"{block.name} needs the server at {url}")
    script = tmp_path / "snippet.py"
    script.write_text(block.code, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != "SESSIONSTORE_URL"}
    env |= {"XDG_DATA_HOME": str(tmp_path / "data"), "PYTHONIOENCODING": "utf-8"}
    done = subprocess.run(
        [sys.executable, "-W", "default::ResourceWarning", str(script)],  # shown, then refused
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stderr = done.stderr
    if "Runner.run_sync(" in block.code:  # the Agents SDK keeps a default loop open, on purpose
        loop_kept = (
            r".*ResourceWarning: unclosed event loop.*\n(\s.*\n)?(.*Enable tracemalloc.*\n)?"
        )
        stderr = re.sub(loop_kept, "", stderr)
    assert not [bad for bad in BAD_STDERR if bad in stderr], stderr
    for (page, marker), printed in OUTPUTS.items():
        if page == block.page and marker in block.code:
            assert done.stdout.splitlines() == printed


def test_every_promised_output_names_one_program() -> None:
    for page, marker in OUTPUTS:
        matching = [b for b in python_blocks("python") if b.page == page and marker in b.code]
        assert len(matching) == 1, (page, marker)


# -- the commands ----------------------------------------------------------------------

SHELL_ENDS = {"|", ">", ">>", "<", "&&", "||", ";", "2>", "2>&1"}


def cli_commands() -> list[tuple[str, list[str]]]:
    """Every ``sessionstore ...`` (or ``python -m sessionstore.cli ...``) in a shell block."""
    commands = []
    for block in blocks():
        if block.info not in SHELL_FENCES and not is_console(block):
            continue
        lines = block.code.replace("\\\n", " ").splitlines()
        if block.info != "sh":  # a console: commands are the "$ " lines, the rest is output
            lines = [line[2:] for line in lines if line.startswith("$ ")]
        for line in lines:
            words = shlex.split(line, comments=True)
            while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
                words.pop(0)  # VARIABLE=value before the command
            for end, word in enumerate(words):
                if word in SHELL_ENDS:
                    words = words[:end]
                    break
            if words and Path(words[0]).name == "sessionstore":
                commands.append((f"{block.name}: {line.strip()}", words[1:]))
            elif words[1:3] == ["-m", "sessionstore.cli"]:
                commands.append((f"{block.name}: {line.strip()}", words[3:]))
    return commands


def test_every_shown_command_is_one_the_cli_takes() -> None:
    commands = cli_commands()
    assert len(commands) >= 15
    names = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    runner = CliRunner()
    for where, args in commands:
        # --help parses the command's options and stops before anything runs.
        result = runner.invoke(app, [*args, "--help"], prog_name="sessionstore")
        assert result.exit_code == 0, f"{where}\n{result.output}"
        named = [word for word in args if word in names]
        if named:
            usage = " ".join(result.output.split())
            assert f"Usage: sessionstore {named[0]}" in usage, where


# -- links, citations, statements that must agree ---------------------------------------


def slug(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


@cache
def anchors(page: str) -> set[str]:
    found: set[str] = set()
    tokens = parsed(page)
    for opening, inline in pairwise(tokens):
        if opening.type == "heading_open":
            words = "".join(child.content for child in inline.children or [])
            base = anchor = slug(words)
            number = 0
            while anchor in found:
                number += 1
                anchor = f"{base}-{number}"
            found.add(anchor)
    return found


def links(page: str) -> Iterator[tuple[int, str]]:
    for token in parsed(page):
        for child in token.children or []:
            target = child.attrs.get("href") or child.attrs.get("src")
            if isinstance(target, str):
                assert token.map is not None
                yield token.map[0] + 1, target


def test_every_link_points_to_a_file_and_heading_that_exist() -> None:
    broken, checked = [], 0
    for page in PAGES:
        for line, target in links(page):
            if re.match(r"[a-z][a-z+.-]*:", target):  # https:, mailto:
                assert target.startswith(("https://", "http://")), f"{page}:{line}: {target}"
                continue
            checked += 1
            path, _, anchor = target.partition("#")
            file = (ROOT / page).parent / unquote(path) if path else ROOT / page
            if not file.exists():
                broken.append(f"{page}:{line}: {target} (no such file)")
            elif anchor and anchor not in anchors(file.resolve().relative_to(ROOT).as_posix()):
                broken.append(f"{page}:{line}: {target} (no such heading)")
    assert broken == []
    assert checked >= 40


def test_no_page_cites_a_document_outside_the_repository() -> None:
    cited = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in [*(ROOT / page for page in PAGES), *(ROOT / "src").rglob("*.py")]
        for number, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if re.search(r"\bSPEC\b", line)
    ]
    assert cited == []


def test_readme_and_benchmarks_page_say_how_long_make_bench_takes() -> None:
    def durations(page: str) -> set[str]:
        text = (ROOT / page).read_text("utf-8")
        lines = [line for line in text.splitlines() if re.search(r"make bench(?!-)", line)]
        return {m for line in lines for m in re.findall(r"about (\d+ minutes?)", line)}

    readme = durations("README.md")
    assert len(readme) == 1
    assert durations("docs/benchmarks.md") == readme

"""Install each peer in its own virtualenv and run the same workloads on it.

Usage (from the repository root; ``make bench-peers`` runs the defaults)::

    python -m bench.peers.run [--peers openai-agents,langchain] [size flags of bench.run]
        [--frameworks openai-agents,adk,llama-index]

Each peer gets ``bench/.venvs/<peer>`` (created and installed on first use,
reinstalled when its requirements below change) and runs
``bench/peers/<peer>_peer.py`` there. The merged results go to
``bench/results/peers.json``; ``python -m bench.report`` puts them beside
sessionstore's in ``docs/benchmarks.md``. Then ``bench.peers.frameworks``
measures the frameworks' own stores against our adapters
(``bench/results/frameworks.json``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.workloads import ROOT, python_env

VENVS = Path(ROOT) / "bench" / ".venvs"
OUT = Path(ROOT) / "bench" / "results" / "peers.json"

PEERS: dict[str, tuple[str, list[str]]] = {
    "openai-agents": (
        "bench.peers.openai_agents_peer",
        ["openai-agents[redis,sqlalchemy]==0.24.0", "asyncpg", "asyncmy", "aiosqlite"],
    ),
    "langchain": (
        "bench.peers.langchain_peer",
        [
            "langchain-community==0.4.2",
            "sqlalchemy[asyncio]",
            "redis",
            "aiosqlite",
            "asyncpg",
            "asyncmy",
        ],
    ),
}


def log(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def python_for_venvs() -> str:
    return shutil.which("python3.11") or sys.executable


def ensure_venv(name: str, requirements: list[str]) -> Path:
    """Create ``bench/.venvs/<name>`` with ``requirements`` unless it is up to date."""
    venv = VENVS / name
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = hashlib.sha256("\n".join(requirements).encode()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"installing {name} into {venv} ...")
    if not python.exists():
        subprocess.run([python_for_venvs(), "-m", "venv", str(venv)], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", *requirements], check=True)
    stamp.write_text(wanted)
    return python


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--frameworks",
        default="openai-agents,adk,llama-index",
        help="then bench.peers.frameworks on these ('' to skip); --quick is passed on",
    )
    args, passthrough = parser.parse_known_args(argv)
    storages: dict[str, dict[str, Any]] = {}
    versions: dict[str, str] = {}
    env = python_env() | {"PYTHONWARNINGS": "ignore"}
    for peer in filter(None, args.peers.split(",")):
        module, requirements = PEERS[peer]
        python = ensure_venv(peer, requirements)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            done = subprocess.run(
                [str(python), "-m", module, "--out", str(out), *passthrough], env=env, check=False
            )
            if done.returncode != 0 or not out.exists():
                log(f"{peer} failed (exit {done.returncode})")
                continue
            result = json.loads(out.read_text())
        versions[result["system"]] = result["version"]
        for storage, row in result["storages"].items():
            label = f"{result['system']} {row.get('name', '')}".strip()
            storages.setdefault(storage, {})[label] = row
    merged = {
        "load_after": os.getloadavg(),
        "command": f"python -m bench.peers.run {shlex.join(argv)}".strip(),
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "versions": versions,
        "storages": storages,
    }
    if args.peers:  # with --peers '' only the frameworks run; peers.json stays as it was
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(merged, indent=1) + "\n")
        log(f"results written to {args.out}")
    if args.frameworks:
        from bench.peers import frameworks  # noqa: PLC0415 (only when asked for)

        quick = ["--quick"] if "--quick" in passthrough else []
        return frameworks.main(["--frameworks", args.frameworks, *quick])
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

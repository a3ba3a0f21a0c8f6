"""PNG plots of the benchmark's results for ``docs/benchmarks.md`` (matplotlib).

``python -m bench.plot`` reads ``bench/results/*.json`` and writes
``docs/img/bench-latest.png`` (latest-10 against session size) and
``docs/img/bench-creates.png`` (creates/s: sessionstore, the driver floor and
the peers, per storage).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench.report import RESULTS
from bench.workloads import ROOT

IMG = Path(ROOT) / "docs" / "img"


def ok(row: dict[str, Any], workload: str) -> dict[str, Any] | None:
    value = row.get(workload)
    if not isinstance(value, dict) or "na" in value or "error" in value or "na" in row:
        return None
    return value


def plot_latest(ours: dict[str, Any], peers: dict[str, Any] | None) -> Path:
    fig, ax = plt.subplots(figsize=(11, 5.5))
    for name, row in ours["rows"].items():
        latest = ok(row, "latest")
        if latest:
            sizes = [int(s) for s in latest["median_ms"]]
            ax.plot(sizes, list(latest["median_ms"].values()), marker="o", label=name)
    for storage, systems in (peers or {}).get("storages", {}).items():
        for label, row in systems.items():
            latest = ok(row, "latest")
            if latest:
                sizes = [int(s) for s in latest["median_ms"]]
                values = list(latest["median_ms"].values())
                ax.plot(sizes, values, linestyle="--", marker="x", label=f"{label} [{storage}]")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("entries (turns) in the session")
    ax.set_ylabel("median latest-10 read (ms)")
    ax.set_title("Reading the newest 10 turns should not depend on the session's length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = IMG / "bench-latest.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_creates(ours: dict[str, Any], peers: dict[str, Any] | None) -> Path:
    bars: list[tuple[str, float, str]] = []  # label, creates/s, colour
    for storage, row in ours["rows"].items():
        append = ok(row, "append")
        if append is None or storage == "memory":
            continue
        bars.append((f"{storage}: sessionstore", append["creates_per_s"], "tab:blue"))
        floor = ok(row, "floor")
        if floor:
            bars.append((f"{storage}: bare driver (floor)", floor["creates_per_s"], "tab:gray"))
        for label, peer in (peers or {}).get("storages", {}).get(storage, {}).items():
            peer_append = ok(peer, "append")
            if peer_append:
                bars.append((f"{storage}: {label}", peer_append["creates_per_s"], "tab:orange"))
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(bars) + 1.5))
    ys = list(range(len(bars)))[::-1]
    ax.barh(ys, [b[1] for b in bars], color=[b[2] for b in bars])
    ax.set_yticks(ys, [b[0] for b in bars], fontsize=7)
    for y, (_, value, _) in zip(ys, bars, strict=True):
        ax.text(value, y, f" {value:,.0f}", va="center", fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("sequential creates per second (log scale; one turn each)")
    ax.set_title("sessionstore (blue), the bare driver's floor (grey), peers (orange)")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    fig.tight_layout()
    path = IMG / "bench-creates.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> int:
    IMG.mkdir(parents=True, exist_ok=True)
    ours = json.loads((RESULTS / "sessionstore.json").read_text())
    peers_file = RESULTS / "peers.json"
    peers = json.loads(peers_file.read_text()) if peers_file.exists() else None
    for path in (plot_latest(ours, peers), plot_creates(ours, peers)):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""PNG plots of the benchmark's results for ``docs/benchmarks.md`` (matplotlib).

``python -m bench.plot`` reads ``bench/results/*.json`` and writes
``docs/img/bench-latest.png`` (latest-10 against session size) and
``docs/img/bench-creates.png`` (creates/s: sessionstore, the driver floor and
the peers, per storage), and from ``bench/results/frameworks.json``
``docs/img/bench-frameworks.png`` (our adapters' time over the frameworks'
own stores').
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


def framework_ratios(data: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(case, measure, ours / native time) for every pair both sides measured."""
    found = []
    for framework, result in data["results"].items():
        for storage, case in result.items():
            runs = case["workloads"]
            largest = str(case.get("sizes", data["sizes"])["read_sizes"][-1])
            measures = {
                "turn p50": ("turn", lambda r: r["p50_ms"]),
                "last 20 of the largest log": (
                    "read",
                    lambda r, largest=largest: r["median_ms"][largest],
                ),
                "list": ("list", lambda r: r["median_ms"]),
                "concurrent turn": ("concurrent", lambda r: 1 / r["turns_per_s"]),
            }
            for measure, (workload, value) in measures.items():
                pair = runs.get(workload, {})
                ours, native = ok(pair, "ours"), ok(pair, "native")
                if ours and native:
                    found.append((f"{framework} {storage}", measure, value(ours) / value(native)))
    return found


def plot_frameworks(data: dict[str, Any]) -> Path:
    """Ours / native time per case and measure (log scale; left of 1: ours is faster)."""
    ratios = framework_ratios(data)
    cases = list(dict.fromkeys(case for case, _, _ in ratios))
    measures = list(dict.fromkeys(measure for _, measure, _ in ratios))
    fig, ax = plt.subplots(figsize=(9, 0.9 * len(cases) + 1.5))
    height = 0.8 / max(1, len(measures))
    for m, measure in enumerate(measures):
        ys, values = [], []
        for c, case in enumerate(cases):
            for case_name, name, value in ratios:
                if case_name == case and name == measure:
                    ys.append(len(cases) - 1 - c + (m - len(measures) / 2) * height)
                    values.append(value)
        ax.barh(ys, values, height=height, label=measure, left=0)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_xscale("log")
    ax.set_yticks(range(len(cases))[::-1], cases, fontsize=8)
    ax.set_xlabel("our adapter's time / the framework's own store's time (log; < 1: ours faster)")
    ax.set_title("sessionstore adapters against the frameworks' own stores")
    ax.grid(True, axis="x", which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    path = IMG / "bench-frameworks.png"
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
    frameworks_file = RESULTS / "frameworks.json"
    if frameworks_file.exists():
        print(f"wrote {plot_frameworks(json.loads(frameworks_file.read_text()))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Markdown tables from the benchmark's JSON results.

``python -m bench.report`` rewrites the generated part of
``docs/benchmarks.md`` (between the ``results`` markers) from
``bench/results/sessionstore.json`` and ``bench/results/peers.json``, and
the part between the ``frameworks`` markers from
``bench/results/frameworks.json``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench.workloads import ROOT

RESULTS = Path(ROOT) / "bench" / "results"
DOC = Path(ROOT) / "docs" / "benchmarks.md"

Cell = Callable[[dict[str, Any]], str]


def dig(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        if "na" in value:
            return "n/a"
        if "error" in value:
            return f"error: {value['error']}"
        value = value.get(part)
    return value


def num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value >= 100:
        return f"{value:,.0f}"
    if isinstance(value, float):
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    return f"{value:,}"


def col(path: str) -> Cell:
    return lambda row: num(dig(row, path))


def pair(a: str, b: str, between: str = " → ") -> Cell:
    def cell(row: dict[str, Any]) -> str:
        left, right = dig(row, a), dig(row, b)
        if isinstance(left, str):
            return left
        return f"{num(left)}{between}{num(right)}"

    return cell


def table(rows: dict[str, Any], columns: Sequence[tuple[str, Cell]]) -> str:
    head = "| backend | " + " | ".join(name for name, _ in columns) + " |"
    rule = "|---|" + "---:|" * len(columns)
    lines = [head, rule]
    for name, row in rows.items():
        if "na" in row:
            lines.append(f"| {name} | n/a ({row['na']}) |" + " |" * (len(columns) - 1))
            continue
        lines.append(f"| {name} | " + " | ".join(cell(row) for _, cell in columns) + " |")
    return "\n".join(lines)


def latest_columns(sizes: Sequence[int]) -> list[tuple[str, Cell]]:
    columns: list[tuple[str, Cell]] = [
        (f"latest-10 @ {size:,} (ms)", col(f"latest.median_ms.{size}")) for size in sizes
    ]
    columns.append((f"{sizes[-1]:,} / {sizes[0]:,}", col("latest.ratio_largest_to_smallest")))
    return columns


def ours_tables(result: dict[str, Any]) -> str:
    rows = result["rows"]
    sizes = result["sizes"]
    writes = table(
        rows,
        [
            ("creates/s", col("append.creates_per_s")),
            ("p50 ms, first → last 10%", pair("append.first_p50_ms", "append.last_p50_ms")),
            ("p95 ms, first → last 10%", pair("append.first_p95_ms", "append.last_p95_ms")),
            ("floor p50 ms", col("floor.p50_ms")),
            ("ours p50 ms (paired)", col("floor.ours_p50_ms")),
            ("cost / floor", col("floor.ratio")),
            ("p50 / floor p50", col("floor.p50_ratio")),
        ],
    )
    reads = table(
        rows,
        [
            *latest_columns(sizes["latest_sizes"]),
            ("many: ops/s", col("many.ops_per_s")),
            ("many: creates/s", col("many.creates_per_s")),
            ("many: reads/s", col("many.reads_per_s")),
        ],
    )
    mixed = table(
        rows,
        [
            ("update p50 ms", col("update.p50_ms")),
            ("update p95 ms", col("update.p95_ms")),
            ("concurrent ops/s", col("concurrent.ops_per_s")),
            ("lost", col("concurrent.lost_writes")),
            ("errors", col("concurrent.errors")),
            (f"{sizes['processes']} processes: creates/s", col("processes.creates_per_s")),
            ("lost", col("processes.lost_writes")),
            ("errors", col("processes.errors")),
        ],
    )
    items = table(
        rows,
        [
            ("append_items p50 ms", col("items.append_p50_ms")),
            ("create p50 ms (paired)", col("items.entry_p50_ms")),
            ("items / create", col("items.append_to_entry")),
            *[
                (f"get_items(20) @ {size:,} (ms)", col(f"items.get20_median_ms.{size}"))
                for size in sizes["latest_sizes"]
            ],
            (
                f"{sizes['latest_sizes'][-1]:,} / {sizes['latest_sizes'][0]:,}",
                col("items.ratio_largest_to_smallest"),
            ),
        ],
    )
    agents = table(
        rows,
        [
            ("together: turns/s", col("agents.together.turns_per_s")),
            ("p50 ms", col("agents.together.p50_ms")),
            ("p99 ms", col("agents.together.p99_ms")),
            ("alone: turns/s", col("agents.alone.turns_per_s")),
            ("p50 ms", col("agents.alone.p50_ms")),
            ("p99 ms", col("agents.alone.p99_ms")),
            ("together / alone", col("agents.gain")),
        ],
    )
    return (
        f"**Writes** (append: {sizes['appends']:,} sequential creates on one session; "
        "floor: the bare driver's write, each one timed right after one of ours, and the "
        "ratio of their total time and of their medians)\n\n"
        f"{writes}\n\n"
        f"**Reads** (median of {sizes['latest_reads']} latest-10 reads per session size; "
        f"many: {sizes['sessions']} sessions x {sizes['turns']} turns, then latest-"
        f"{sizes['turns']} of each)\n\n{reads}\n\n"
        f"**Updates and concurrency** (update: {sizes['updates']} feedback updates on a "
        f"{sizes['update_size']:,}-entry session; concurrent: {sizes['tasks']} tasks x "
        f"{sizes['task_appends']} appends + 4 updaters + 2 deleters on one session; "
        f"processes: {sizes['processes']} x {sizes['process_appends']} appends)\n\n{mixed}\n\n"
        f"**Item log** (append_items: {sizes['appends']:,} turns of 4 items (message, tool "
        "call, tool output, reply), each timed next to one entry create on another session; "
        f"get_items(20): median of {sizes['latest_reads']} reads per log size)\n\n{items}\n\n"
        f"**Agents** ({sizes.get('agents', 64)} conversations at once, each its own session, "
        "each turn one create and one latest-10 read, for "
        f"{sizes.get('agent_seconds', 5.0):g} s; then one conversation alone as long)\n\n"
        f"{agents}\n"
    )


def peer_tables(ours: dict[str, Any], peers: dict[str, Any]) -> str:
    """One comparison table per storage: sessionstore's row, then each peer's."""
    largest = str(ours["sizes"]["latest_sizes"][-1])
    smallest = str(ours["sizes"]["latest_sizes"][0])
    columns: list[tuple[str, Cell]] = [
        ("creates/s", col("append.creates_per_s")),
        ("append p50 ms", col("append.p50_ms")),
        (f"latest-10 @ {int(smallest):,} ms", col(f"latest.median_ms.{smallest}")),
        (f"latest-10 @ {int(largest):,} ms", col(f"latest.median_ms.{largest}")),
        ("many ops/s", col("many.ops_per_s")),
        ("update p50 ms", col("update.p50_ms")),
        ("concurrent ops/s", col("concurrent.ops_per_s")),
        ("lost / errors", pair("concurrent.lost_writes", "concurrent.errors", " / ")),
        ("append_items p50 ms", col("items.append_p50_ms")),
        (f"get_items(20) @ {int(largest):,} ms", col(f"items.get20_median_ms.{largest}")),
        ("4 processes: creates/s", col("processes.creates_per_s")),
        ("lost / errors", pair("processes.lost_writes", "processes.errors", " / ")),
    ]
    parts = []
    for storage, systems in peers["storages"].items():
        rows = {f"**sessionstore** ({storage})": ours["rows"].get(storage, {"na": "not run"})}
        rows.update(systems)
        # the processes workload runs on SQLite (and files) only
        columns_here = columns if storage == "sqlite" else columns[:-2]
        parts.append(
            f"*{storage}*\n\n" + table(rows, columns_here).replace("| backend |", "| system |")
        )
    return "\n\n".join(parts) + "\n"


def mark(ok: bool | None) -> str:
    return "" if ok is None else (" ✓" if ok else " ✗")


def best_peer(peers: dict[str, Any] | None, storage: str) -> tuple[str, float] | None:
    best: tuple[str, float] | None = None
    for label, row in (peers or {}).get("storages", {}).get(storage, {}).items():
        value = dig(row, "append.creates_per_s")
        if isinstance(value, (int, float)) and (best is None or value > best[1]):
            best = (label, value)
    return best


def targets_table(ours: dict[str, Any], peers: dict[str, Any] | None) -> str:
    """The issue's targets, checked against the latest results (nothing asserts them)."""
    lines = [
        "| backend | latest-10 50k / 100 (≤ 1.3) | creates/s vs best peer (≥) "
        "| cost / floor (≤ 2) | update p50 ms (< 1, SQLite and Redis) "
        "| lost writes, errors (0) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in ours["rows"].items():
        if "na" in row:
            lines.append(f"| {name} | n/a ({row['na']}) | | | | |")
            continue
        ratio = dig(row, "latest.ratio_largest_to_smallest")
        latest = num(ratio) + mark(ratio <= 1.3 if isinstance(ratio, float) else None)
        creates = dig(row, "append.creates_per_s")
        peer = best_peer(peers, name)
        if peer is None or not isinstance(creates, (int, float)):
            versus = "no peer"
        else:
            versus = f"{num(creates)} vs {num(peer[1])} ({peer[0]})" + mark(creates >= peer[1])
        cost = dig(row, "floor.ratio")
        floor = num(cost) + mark(cost <= 2 if isinstance(cost, float) else None)
        update = dig(row, "update.p50_ms")
        judged = name in {"sqlite", "redis"} and isinstance(update, float)
        update_cell = num(update) + mark(update < 1 if judged else None)
        counts = [
            dig(row, f"{w}.{c}")
            for w in ("concurrent", "processes")
            for c in ("lost_writes", "errors")
        ]
        numbers = [c for c in counts if isinstance(c, int)]
        safety = ", ".join(str(c) for c in numbers) + mark(not any(numbers))
        lines.append(f"| {name} | {latest} | {versus} | {floor} | {update_cell} | {safety} |")
    return "\n".join(lines) + "\n"


def setting(ours: dict[str, Any], peers: dict[str, Any] | None) -> str:
    machine = ours["machine"]
    versions = dict(ours["versions"])
    if peers:
        versions.update(peers["versions"])
    listed = ", ".join(f"{name} {version}" for name, version in versions.items())
    return (
        f"Machine: {machine['cores']} cores ({machine['cpu']}), {machine['memory']} RAM, "
        f"{machine['os']}, Python {machine['python']}; servers on the same machine "
        f"(loopback). Load average (1, 5, 15 min) before the run: "
        f"{', '.join(f'{x:.1f}' for x in machine.get('load_before', []))}; after: "
        f"{', '.join(f'{x:.1f}' for x in machine.get('load_after', []))}.\n\n"
        f"Versions: {listed}.\n\n"
    )


def render() -> str:
    ours = json.loads((RESULTS / "sessionstore.json").read_text())
    peers_file = RESULTS / "peers.json"
    peers = json.loads(peers_file.read_text()) if peers_file.exists() else None
    text = (
        setting(ours, peers)
        + f"Measured {ours['when']} with `{ours['command']}`.\n\n"
        + ours_tables(ours)
    )
    if peers:
        text += (
            f"\n### Against the peers\n\nMeasured {peers['when']} with "
            f"`{peers['command']}` (same workloads, same sizes where the peer can; a turn is "
            "a user message and an assistant message).\n\n" + peer_tables(ours, peers)
        )
    return text


def replace_between(doc: str, name: str, body: str) -> str:
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if start not in doc or end not in doc:
        raise SystemExit(f"{DOC} has no {start} ... {end} markers")
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


FRAMEWORK_TITLES = {
    "openai-agents": "OpenAI Agents SDK",
    "adk": "Google ADK",
    "llama-index": "LlamaIndex",
}


def ratio_cell(ours: Any, native: Any) -> str:
    """``ours / native`` for a time (lower is better), marked ✓ when ours is not slower."""
    if not isinstance(ours, (int, float)) or not isinstance(native, (int, float)) or not native:
        return "-"
    value = ours / native
    return f"{value:.2f}" + mark(value <= 1.0)


def framework_rows(
    result: dict[str, Any], sizes: dict[str, Any]
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The columns of one framework's table, and its rows by label."""
    read_sizes = sizes["read_sizes"]
    names = [
        "turn p50 ms",
        "turns/s",
        *[f"last 20 @ {size:,} ms" for size in read_sizes],
        f"list @ {sizes['sessions']:,} ms",
        f"{sizes['tasks']} tasks: turns/s",
        "lost / split / reordered",
        "errors (stale reloads)",
    ]
    rows: dict[str, dict[str, Any]] = {}
    for storage, case in result.items():
        for side in ("ours", "native"):
            runs = {w: r.get(side) for w, r in case["workloads"].items() if r.get(side)}
            if not runs:
                continue
            fallback = "our adapter" if side == "ours" else case["native"]
            name = next((r["name"] for r in runs.values() if "name" in r), fallback)
            label = f"{storage}: **{name}**" if side == "ours" else f"{storage}: {name}"
            rows[label] = runs
    return names, rows


def brief(value: Any) -> str:
    """``num(value)``, with an error's text left to the JSON file."""
    text = num(value)
    return "error" if text.startswith("error:") else text


def framework_cells(runs: dict[str, Any], sizes: dict[str, Any]) -> list[str]:
    num = brief
    cells = [num(dig(runs, "turn.p50_ms")), num(dig(runs, "turn.turns_per_s"))]
    cells += [num(dig(runs, f"read.median_ms.{size}")) for size in sizes["read_sizes"]]
    cells.append(num(dig(runs, "list.median_ms")))
    cells.append(num(dig(runs, "concurrent.turns_per_s")))
    audit = [dig(runs, f"concurrent.{key}") for key in ("lost", "split", "reordered")]
    cells.append(" / ".join(num(value) for value in audit) if audit[0] is not None else "-")
    errors, reloads = dig(runs, "concurrent.errors"), dig(runs, "concurrent.stale_retries")
    cells.append(f"{num(errors)} ({num(reloads)})" if isinstance(errors, int) else num(errors))
    return cells


def frameworks_tables(data: dict[str, Any]) -> str:
    """One table per framework (our adapter's row, then the native store's, per storage),
    then how ours compares, time for time."""
    versions = ", ".join(f"{name} {version}" for name, version in data["versions"].items())
    load = data.get("load_after") or data["load_before"]
    parts = [
        f"Measured {data['when']} with `{data['command']}`; load average before "
        f"{', '.join(f'{x:.1f}' for x in data['load_before'])}, after "
        f"{', '.join(f'{x:.1f}' for x in load)}. Versions: {versions}."
    ]
    for update in data.get("updates", []):
        parts.append(
            f"Updated {update['when']} with `{update['command']}` (load average before "
            f"{', '.join(f'{x:.1f}' for x in update['load_before'])}): those workloads "
            "replace the run's."
        )
    if data.get("pending"):
        parts.append(
            f"Not measured in full (the run stopped first; an update may hold some of their "
            f"workloads): {', '.join(data['pending'])}."
        )
    verdict = [
        "| framework | storage | turn p50, ours / native | "
        "last 20 of the largest log, ours / native | list, ours / native | "
        "concurrent turns/s, native / ours | lost + split + reordered, ours (native) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for framework, result in data["results"].items():
        sizes = next(iter(result.values())).get("sizes", data["sizes"])
        names, rows = framework_rows(result, sizes)
        title = FRAMEWORK_TITLES.get(framework, framework)
        lines = [
            "| storage: system | " + " | ".join(names) + " |",
            "|---|" + "---:|" * len(names),
        ]
        for label, runs in rows.items():
            lines.append(f"| {label} | " + " | ".join(framework_cells(runs, sizes)) + " |")
        parts.append(
            f"*{title}* (ours in bold; {sizes['turns']:,} sequential turns; logs of "
            f"{', '.join(f'{s:,}' for s in sizes['read_sizes'])} items, {sizes['reads']} "
            f"rounds of last-20 reads; {sizes['sessions']:,} sessions listed "
            f"({sizes['lists']} listings); {sizes['tasks']} tasks x {sizes['task_turns']} "
            "turns on one session)\n\n" + "\n".join(lines)
        )
        for storage, case in result.items():
            largest = case.get("sizes", sizes)["read_sizes"][-1]
            runs = case["workloads"]
            ours = {w: r.get("ours", {}) for w, r in runs.items()}
            native = {w: r.get("native") or {"na": "none"} for w, r in runs.items()}
            if all("na" in r for r in native.values()):
                continue
            bad = []
            for side in (ours, native):
                counts = [dig(side, f"concurrent.{k}") for k in ("lost", "split", "reordered")]
                bad.append(sum(c for c in counts if isinstance(c, int)))
            verdict.append(
                f"| {title} | {storage} "
                f"| {ratio_cell(dig(ours, 'turn.p50_ms'), dig(native, 'turn.p50_ms'))} "
                f"| {ratio_cell(dig(ours, f'read.median_ms.{largest}'), dig(native, f'read.median_ms.{largest}'))} "  # noqa: E501
                f"| {ratio_cell(dig(ours, 'list.median_ms'), dig(native, 'list.median_ms'))} "
                f"| {ratio_cell(dig(native, 'concurrent.turns_per_s'), dig(ours, 'concurrent.turns_per_s'))} "  # noqa: E501
                f"| {bad[0]} ({bad[1]}) |"
            )
    parts.append(
        "How ours compares (a ratio of times, or of native to our throughput: ≤ 1, marked "
        "✓, means ours is at least as fast)\n\n" + "\n".join(verdict)
    )
    return "\n\n".join(parts) + "\n"


def main() -> int:
    ours = json.loads((RESULTS / "sessionstore.json").read_text())
    peers_file = RESULTS / "peers.json"
    peers = json.loads(peers_file.read_text()) if peers_file.exists() else None
    doc = replace_between(DOC.read_text(), "results", render())
    doc = replace_between(doc, "targets", targets_table(ours, peers))
    frameworks_file = RESULTS / "frameworks.json"
    if frameworks_file.exists() and "<!-- frameworks:start -->" in doc:
        frameworks = json.loads(frameworks_file.read_text())
        doc = replace_between(doc, "frameworks", frameworks_tables(frameworks))
    DOC.write_text(doc)
    print(f"updated {DOC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

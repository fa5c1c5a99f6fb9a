"""Output: rich tables on the terminal; JSON and Markdown files under benchmarks/results/."""

from __future__ import annotations

import itertools
import json
import os
import platform
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from rich.console import Console
from rich.table import Table

from .memory import PeakWindow
from .stats import Case, Measured
from .targets import Target

RESULTS_DIR: Final = Path(__file__).resolve().parent / "results"
# "list" (projection="list") and its ratio are measured at page 1 only: "-" elsewhere.
SEARCH_COLUMNS: Final = ("exact", "capped", "raw", "naive", "floor", "list", "prepared")
SEARCH_RATIOS: Final = (
    "capped/raw",
    "capped/floor",
    "prepared/floor",
    "exact/naive",
    "capped/naive",
    "list/capped",
)


def duration(seconds: float) -> str:
    """A duration in the unit that suits it."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:,.0f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds:,.2f} s"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    info: dict[str, Any] = {
        "nproc": len(os.sched_getaffinity(0))
        if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        kib = int(meminfo.read_text().split("MemTotal:")[1].split()[0])
        info["memory_gib"] = round(kib / 1024 / 1024, 1)
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    return info


def git_revision() -> str | None:
    """The checked-out commit (read only), with "+dirty" when the tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return head + ("+dirty" if dirty else "")


# -- terminal ---------------------------------------------------------------------


def notes(info: dict[str, Any]) -> list[str]:
    """One-line findings beside the tables (the client-side encoding profile)."""
    lines = []
    mapping = info.get("row_mapping")
    if mapping:
        lines.append(
            f"Building one Diamond from a row (Q1 page 1, {mapping['rows']} rows): psycopg's "
            f"class_row way {mapping['class_row_us']:.2f} µs, record_maker "
            f"{mapping['record_maker_us']:.2f} µs "
            f"({mapping['class_row_us'] / mapping['record_maker_us']:.1f}x cheaper)."
        )
    profile = info.get("encode_profile")
    if not profile:
        return lines
    line = (
        f"Encoding + SHA-256 of {profile['rows']:,} ingest payloads "
        f"(mean {info['ingest_payload_bytes_mean']:,.0f} B of JSON) in Python: "
        f"stdlib json {profile['stdlib_json_plus_sha256_s']:.2f} s, "
        f"the library's payload_hash {profile['library_payload_hash_s']:.2f} s"
    )
    if "orjson_plus_sha256_s" in profile:
        same = "identical" if profile["orjson_output_identical"] else "DIFFERENT"
        line += f", orjson {profile['orjson_plus_sha256_s']:.2f} s ({same} bytes)"
    return [*lines, line + "."]


def print_report(
    console: Console,
    cases: Sequence[Case],
    memory: Sequence[PeakWindow],
    targets: Sequence[Target],
    info: dict[str, Any],
    curve: dict[str, Any] | None = None,
) -> None:
    search = [c for c in cases if c.scenario == "search"]
    if search:
        console.print(_search_table(search))
    throughput = [c for c in cases if c.scenario == "throughput"]
    if throughput:
        title = "throughput (closed loops, pools of the same size)"
        console.print(_rows_table(title, *_throughput(throughput)))
    for case in cases:
        if case.scenario not in ("search", "throughput"):
            console.print(_case_table(case))
    for line in notes(info):
        console.print(line)
    console.print(_memory_table(memory))
    if curve:
        console.print(_rows_table("cost curve (median per call)", *curve_table(curve)))
        for line in curve_notes(curve):
            console.print(line)
    console.print(_targets_table(targets))


def _search_table(cases: Sequence[Case]) -> Table:
    table = Table(
        title="search_diamonds, ms per call (median / p95); ratios: median of paired ratios"
    )
    table.add_column("case")
    table.add_column("matches", justify="right")
    for name in SEARCH_COLUMNS:
        table.add_column(name, justify="right")
    for name in SEARCH_RATIOS:
        table.add_column(name, justify="right")
    for case in cases:
        cells = [
            f"{m.median * 1e3:.2f} / {m.p95 * 1e3:.2f}" if m else "-" for m in _search_cells(case)
        ]
        ratios = _search_ratios(case)
        table.add_row(case.name, f"{case.info['matches']:,}", *cells, *ratios)
    return table


THROUGHPUT_COLUMNS: Final = (
    "clients",
    "library searches/s",
    "raw searches/s",
    "library/raw",
    "library p50 / p95",
    "raw p50 / p95",
    "p95 library/raw",
    "lookups/s (library, raw)",
)


def _throughput(cases: Sequence[Case]) -> tuple[tuple[str, ...], list[list[str]]]:
    """The throughput table: one row per number of clients."""
    rows = []
    for c in cases:
        i = c.info
        rows.append(
            [
                str(i["clients"]),
                f"{i['library_searches_per_s']:,.0f}",
                f"{i['raw_searches_per_s']:,.0f}",
                f"{c.ratios['library/raw throughput']:.2f}",
                f"{duration(i['library_p50_s'])} / {duration(i['library_p95_s'])}",
                f"{duration(i['raw_p50_s'])} / {duration(i['raw_p95_s'])}",
                f"{c.ratios['library/raw p95']:.2f}",
                f"{i['library_lookups_per_s']:,.0f}, {i['raw_lookups_per_s']:,.0f}",
            ]
        )
    return THROUGHPUT_COLUMNS, rows


def curve_table(curve: dict[str, Any]) -> tuple[tuple[str, ...], list[list[str]]]:
    """The cost-curve table: a row per kind of work, medians per size, then growth per step."""
    sizes = curve["sizes"]
    steps = [
        f"x{b / a:.0f} rows: growth (log n: {g:.2f})"
        for (a, b), g in zip(itertools.pairwise(sizes), curve["log_growth"], strict=True)
    ]
    columns = ("work", *(f"{n:,}" for n in sizes), *steps)
    rows = [
        [r["work"], *(duration(m) for m in r["median_s"]), *(f"{g:.2f}" for g in r["growth"])]
        for r in curve["rows"]
    ]
    return columns, rows


def curve_notes(curve: dict[str, Any]) -> list[str]:
    faster = curve["faster_than_log_n"]
    if not faster:
        return ["Every search's page-1 cost grows no faster than log(n) (within 25%)."]
    return [
        f"Page-1 cost growing faster than log(n): {f['work']} "
        f"(growth {', '.join(f'{g:.2f}' for g in f['growth'])}); its plan is in the JSON."
        for f in faster
    ]


def _rows_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    table = Table(title=title)
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|---|" + "---:|" * (len(columns) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


def _search_cells(case: Case) -> list[Measured | None]:
    return [case.results.get(name) for name in SEARCH_COLUMNS]


def _search_ratios(case: Case) -> list[str]:
    return [f"{case.ratios[r]:.2f}" if r in case.ratios else "-" for r in SEARCH_RATIOS]


def _case_table(case: Case) -> Table:
    ratios = ", ".join(f"{k} = {v:.2f}" for k, v in case.ratios.items())
    table = Table(title=f"{case.name}: {ratios}")
    for column in ("contender", "median", "p95", "per item", "items/s", "peak RSS +"):
        table.add_column(column, justify="left" if column == "contender" else "right")
    for name, m in case.results.items():
        table.add_row(
            name,
            duration(m.median),
            duration(m.p95),
            duration(m.median / m.items),
            f"{m.rate:,.0f}",
            _mib(m.peak_growth),
        )
    return table


def _memory_table(memory: Sequence[PeakWindow]) -> Table:
    table = Table(title="peak RSS of this process, per scenario")
    for column in ("scenario", "rows streamed", "RSS before", "peak RSS", "growth"):
        table.add_column(column, justify="left" if column == "scenario" else "right")
    for w in memory:
        table.add_row(
            w.scenario,
            f"{w.rows_streamed:,}",
            _mib(w.baseline),
            _mib(w.peak),
            _mib(max(w.peak - w.baseline, 0)),
        )
    return table


def _targets_table(targets: Sequence[Target]) -> Table:
    table = Table(title="targets (reported, not asserted)")
    for column in ("target", "goal", "measured", "met"):
        table.add_column(column)
    for t in targets:
        met = "n/a" if t.met is None else ("[green]met[/green]" if t.met else "[red]MISSED[/red]")
        table.add_row(t.name, t.goal, t.measured, met)
    return table


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


# -- files --------------------------------------------------------------------------


def write_results(document: dict[str, Any], markdown: str) -> Path:
    """benchmarks/results/<time>-<rows>.json (+ .md); returns the JSON path."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S") + f"-{document['plan']['rows']}"
    path = RESULTS_DIR / f"{stem}.json"
    path.write_text(json.dumps(document, indent=2, default=str))
    path.with_suffix(".md").write_text(markdown)
    return path


def markdown(
    document: dict[str, Any],
    cases: Sequence[Case],
    memory: Sequence[PeakWindow],
    targets: Sequence[Target],
) -> str:
    """The tables of docs/performance.md (latest full-size run)."""
    meta = document["meta"]
    m = meta["machine"]
    lines = [
        f"Measured {meta['date']} on {m['nproc']} cores, {m.get('memory_gib', '?')} GiB "
        f"({m.get('cpu', m['platform'])}), {meta['postgres']}, Python {m['python']}, "
        f"{document['plan']['rows']:,} diamonds (seed {document['plan']['seed']}), "
        f"revision {meta.get('revision') or 'unknown'}.",
        "",
    ]
    search = [c for c in cases if c.scenario == "search"]
    if search:
        lines += [
            "| search (median per call) | matches | "
            + " | ".join(SEARCH_COLUMNS)
            + " | "
            + " | ".join(SEARCH_RATIOS)
            + " |",
            "|---|---:|" + "---:|" * (len(SEARCH_COLUMNS) + len(SEARCH_RATIOS)),
        ]
        for c in search:
            cells = [duration(x.median) if x else "-" for x in _search_cells(c)]
            ratios = _search_ratios(c)
            lines.append(
                f"| {c.name} | {c.info['matches']:,} | " + " | ".join(cells + ratios) + " |"
            )
        lines.append("")
    throughput = [c for c in cases if c.scenario == "throughput"]
    if throughput:
        lines += markdown_table(*_throughput(throughput))
    others = [c for c in cases if c.scenario not in ("search", "throughput")]
    if others:
        lines += [
            "| scenario | contender | median per call | p95 | items/s | peak RSS + |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for c in others:
            for name, x in c.results.items():
                rate, growth = f"{x.rate:,.0f}", _mib(x.peak_growth)
                row = (c.name, name, duration(x.median), duration(x.p95), rate, growth)
                lines.append("| " + " | ".join(row) + " |")
        lines.append("")
    lines += [*notes(document["info"]), ""] if notes(document["info"]) else []
    if memory:
        lines += ["| peak RSS | rows streamed | before | peak |", "|---|---:|---:|---:|"]
        for w in memory:
            lines.append(
                f"| {w.scenario} | {w.rows_streamed:,} | {_mib(w.baseline)} | {_mib(w.peak)} |"
            )
        lines.append("")
    curve = document.get("curve")
    if curve:
        lines += markdown_table(*curve_table(curve))
        lines += [*curve_notes(curve), ""]
    lines += ["| target | goal | measured | |", "|---|---|---|---|"]
    for t in targets:
        met = "n/a" if t.met is None else ("met" if t.met else "**missed**")
        lines.append(f"| {t.name} | {t.goal} | {t.measured} | {met} |")
    return "\n".join(lines) + "\n"

"""The issue's targets, evaluated from the measured cases (reported, never asserted).

Ratios are medians of paired per-item ratios (same round) where the two
figures come from one case; across cases (page 1 vs a cursor page, sums of
medians) they are ratios of medians.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .stats import Case, paired_ratio

OVERHEAD_LIMIT = 1.15


@dataclass
class Target:
    """One target: what it asks, what was measured, and whether it is met (None: not measured)."""

    name: str
    goal: str
    measured: str
    met: bool | None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "goal": self.goal, "measured": self.measured, "met": self.met}


def evaluate(cases: Sequence[Case]) -> list[Target]:
    targets: list[Target] = []
    search = [c for c in cases if c.scenario == "search"]
    if search:
        targets += _search_targets(search)
    growth = [c for c in cases if c.scenario == "ingest_memory"]
    if growth:
        targets.append(_memory_target(growth))
    throughput = [c for c in cases if c.scenario == "throughput"]
    if throughput:
        targets += _throughput_targets(throughput)
    for case in cases:
        if case.scenario == "lookup":
            r = case.ratios["library/raw"]
            targets.append(
                Target(
                    "get_diamond_by_id overhead",
                    f"library/raw <= {OVERHEAD_LIMIT}x",
                    f"{r:.3f}x (median {_us(case.median('library'))} vs {_us(case.median('raw'))})",
                    r <= OVERHEAD_LIMIT,
                )
            )
        elif case.scenario == "facets":
            r = case.ratios["facets/count"]
            targets.append(
                Target(
                    f"search_facets {case.info['query']} vs COUNT(*)",
                    "facets/count <= 3x",
                    f"{r:.2f}x (median {_ms(case.median('facets'))} vs "
                    f"{_ms(case.median('count'))})",
                    r <= 3,
                )
            )
        elif case.scenario == "quick":
            r = case.ratios["ilike/library"]
            targets.append(
                Target(
                    "quick_search_diamonds vs ILIKE",
                    "ilike/library >= 50x",
                    f"{r:.0f}x (median {_us(case.median('library'))} vs "
                    f"{_ms(case.median('ilike'))})",
                    r >= 50,
                )
            )
        elif case.scenario == "ingest":
            targets += _ingest_targets(case)
        elif case.scenario == "consolidation":
            targets += _consolidation_targets(case)
        elif case.scenario == "migration":
            targets += _migration_targets(case)
        elif case.scenario == "dashboard":
            targets += _dashboard_targets(case)
        elif case.scenario == "feeds":
            targets += _feeds_targets(case)
        elif case.scenario == "jobs":
            targets += _jobs_targets(case)
    return targets


def _dashboard_targets(case: Case) -> list[Target]:
    count = _ms(case.median("count"))
    summary, runs = case.ratios["summary/count"], case.ratios["list_runs/count"]
    scan = "index-only" if case.info.get("index_only") else "NOT index-only"
    return [
        Target(
            "dashboard summary vs COUNT(*) of live diamonds",
            "summary/count <= 2x",
            f"{summary:.2f}x ({_ms(case.median('summary'))} vs {count}; {scan})",
            summary <= 2,
        ),
        Target(
            "list_runs page 1 vs COUNT(*) of live diamonds",
            "list_runs/count <= 1x",
            f"{runs:.2f}x ({_ms(case.median('list_runs'))} vs {count})",
            runs <= 1,
        ),
    ]


FEEDS_LIMIT = 1.25  # "costs what it costs with one feed present", within measuring noise


def _feeds_targets(case: Case) -> list[Target]:
    """Issue 13: a claim on one feed costs what it costs with one feed present."""
    return [
        Target(
            f"claim, {ratio.split('/')[0]} vs 1 feed",
            f"<= {FEEDS_LIMIT}x",
            f"{value:.2f}x",
            value <= FEEDS_LIMIT,
        )
        for ratio, value in case.ratios.items()
    ]


def _jobs_targets(case: Case) -> list[Target]:
    """Catalogue jobs (issue 18): one case of the scenario at a time."""
    if "job/floor" in case.ratios:
        floor, original = case.ratios["job/floor"], case.ratios["job/original"]
        return [
            Target(
                "re-pricing job vs the floor", "job/floor <= 1.4x", f"{floor:.2f}x", floor <= 1.4
            ),
            Target(
                "re-pricing job vs the original method",
                "job/original <= 1x",
                f"{original:.2f}x",
                original <= 1.0,
            ),
        ]
    if "changing/no change" in case.ratios:
        ratio = case.ratios["changing/no change"]
        rows, wal = case.info["no_change_rows_changed"], case.info["no_change_wal_bytes"]
        return [
            Target(
                "job with nothing to change",
                ">= 3x faster than changing, writes nothing",
                f"{ratio:.1f}x faster, {rows} rows changed, {wal:,} WAL bytes",
                ratio >= 3 and rows == 0,
            )
        ]
    if "p95 during/before" in case.ratios:
        ratio = case.ratios["p95 during/before"]
        failed = sum(case.info["failed_searches"].values())
        return [
            Target(
                "search p95 during a job",
                "p95 during <= 2x p95 without",
                f"{ratio:.2f}x",
                ratio <= 2,
            ),
            Target("searches failing during a job", "0", str(failed), failed == 0),
        ]
    return []


def _migration_targets(case: Case) -> list[Target]:
    ratio = case.ratios["p95 during/before"]
    failed = sum(case.info["failed_searches"].values())
    before, during = case.results["before"], case.results["during"]
    return [
        Target(
            "search p95 during a migration",
            "p95 during <= 3x p95 before (add column + concurrent index, 8 clients)",
            f"{ratio:.2f}x ({during.p95 * 1e3:.1f} vs {before.p95 * 1e3:.1f} ms; migration "
            f"{case.info['migration_seconds']:.1f} s, longest lock wait "
            f"{case.info['longest_lock_wait_seconds'] * 1e3:.0f} ms)",
            ratio <= 3,
        ),
        Target("searches failing during a migration", "0", str(failed), failed == 0),
    ]


def _by_query(search: Sequence[Case]) -> dict[str, dict[str, Case]]:
    grouped: dict[str, dict[str, Case]] = {}
    for case in search:
        grouped.setdefault(case.info["query"], {})[case.info["kind"]] = case
    return grouped


def _search_targets(search: Sequence[Case]) -> list[Target]:
    queries = _by_query(search)
    overhead = [c.ratios["capped/raw"] for c in search]
    worst = max(search, key=lambda c: c.ratios["capped/raw"])
    median_overhead = statistics.median(overhead)
    targets = [
        Target(
            "search_diamonds overhead",
            f"capped/raw <= {OVERHEAD_LIMIT}x (median over the {len(search)} cases)",
            f"{median_overhead:.3f}x (worst {worst.name}: {worst.ratios['capped/raw']:.2f}x)",
            median_overhead <= OVERHEAD_LIMIT,
        )
    ]
    sums = {"exact": 0.0, "capped": 0.0, "naive": 0.0}
    for cases in queries.values():
        deep = cases.get("cursor", cases["deep"])
        sums["exact"] += cases["page1"].median("exact") + deep.median("exact")
        sums["capped"] += cases["page1"].median("capped") + deep.median("capped")
        sums["naive"] += cases["page1"].median("naive") + cases["deep"].median("naive")
    speedup = sums["naive"] / sums["capped"]
    targets.append(
        Target(
            "12 searches, capped + cursor vs naive",
            "naive sum / capped sum >= 5x",
            f"{speedup:.1f}x ({_ms(sums['capped'])} vs {_ms(sums['naive'])})",
            speedup >= 5,
        )
    )
    targets.append(
        Target(
            "12 searches, exact + cursor vs naive",
            "exact sum <= naive sum",
            f"{sums['exact'] / sums['naive']:.2f}x ({_ms(sums['exact'])} vs {_ms(sums['naive'])})",
            sums["exact"] <= sums["naive"],
        )
    )
    floors = {q: c["page1"].ratios["capped/floor"] for q, c in queries.items()}
    targets.append(
        _every(
            "page 1 within 2x of the EXPLAIN floor",
            "capped/floor <= 2x for every Q",
            floors,
            lambda r: r <= 2.0,
        )
    )
    cursor = {
        q: c["cursor"].ratios["capped/capped p1"] for q, c in queries.items() if "cursor" in c
    }
    targets.append(
        _every(
            "cursor page at depth vs page 1 (capped)",
            "cursor/page 1 <= 1.5x for every Q",
            cursor,
            lambda r: r <= 1.5,
        )
    )
    for mode in ("exact", "capped"):
        # Our deep page is the cursor page (by page number it is an OFFSET, like the naive form's).
        versus = {
            q: paired_ratio(c.get("cursor", c["deep"]).results[mode], c["deep"].results["naive"])
            for q, c in queries.items()
        }
        by_number = ", ".join(
            f"{q} {c['deep'].ratios[f'{mode}/naive']:.2f}x" for q, c in queries.items()
        )
        target = _every(
            f"deep page ({mode}, by cursor) vs naive page 200",
            f"{mode}/naive < 1 for every Q",
            versus,
            lambda r: r < 1.0,
        )
        target.measured += f"; by page number: {by_number}"
        targets.append(target)
    return targets


def _every(name: str, goal: str, ratios: dict[str, float], ok: Any, worst: Any = max) -> Target:
    if not ratios:
        return Target(name, goal, "not measured", None)
    worst = worst(ratios, key=lambda q: ratios[q])
    missed = [q for q, r in ratios.items() if not ok(r)]
    listing = ", ".join(f"{q} {r:.2f}x" for q, r in ratios.items())
    note = f"missed by {', '.join(missed)}; " if missed else ""
    return Target(name, goal, f"{note}worst {worst} {ratios[worst]:.2f}x ({listing})", not missed)


THROUGHPUT_SHARE = 0.95
P95_LIMIT = 1.15


def _throughput_targets(cases: Sequence[Case]) -> list[Target]:
    rates = {f"{c.info['clients']} clients": c.ratios["library/raw throughput"] for c in cases}
    p95 = {f"{c.info['clients']} clients": c.ratios["library/raw p95"] for c in cases}
    return [
        _every(
            "search throughput vs raw psycopg",
            f"library/raw searches per second >= {THROUGHPUT_SHARE}x at every N",
            rates,
            lambda r: r >= THROUGHPUT_SHARE,
            worst=min,
        ),
        _every(
            "search p95 under concurrency vs raw psycopg",
            f"library/raw p95 <= {P95_LIMIT}x at every N",
            p95,
            lambda r: r <= P95_LIMIT,
        ),
    ]


MEMORY_LIMIT = 1.5
COPY_SHARE = 0.90


def _memory_target(cases: Sequence[Case]) -> Target:
    ratios = {
        f"{c.info['rows']:,} {name}": c.info[f"{name}/json"] for c in cases for name in c.results
    }
    worst = max(ratios, key=lambda k: ratios[k])
    listing = ", ".join(f"{k} {r:.2f}x" for k, r in ratios.items())
    return Target(
        "bulk ingest memory",
        f"peak RSS growth <= {MEMORY_LIMIT}x the JSON bytes sent, at every size",
        f"worst {worst} {ratios[worst]:.2f}x ({listing})",
        ratios[worst] <= MEMORY_LIMIT,
    )


def _ingest_targets(case: Case) -> list[Target]:
    versus_copy = 1 / case.ratios["bulk/copy"]
    versus_single = case.ratios["single/bulk"]
    reingest = case.ratios["reingest/bulk"]
    rate = {name: m.rate for name, m in case.results.items()}
    streamed = 1 / case.ratios["bulk_iter/copy"] if "bulk_iter/copy" in case.ratios else None
    also = f"; from an iterator {streamed:.2f}x" if streamed is not None else ""
    return [
        Target(
            "bulk ingest vs streaming COPY",
            f"bulk rate >= {COPY_SHARE:.2f}x the streaming COPY's rate",
            f"{versus_copy:.2f}x ({rate['bulk']:,.0f} vs {rate['copy']:,.0f} rows/s{also})",
            versus_copy >= COPY_SHARE,
        ),
        Target(
            "bulk ingest vs single-row path",
            "bulk rate >= 6x single rate",
            f"{versus_single:.1f}x ({rate['bulk']:,.0f} vs {rate['single']:,.0f} rows/s; "
            f"10 concurrent {rate['single10']:,.0f})",
            versus_single >= 6,
        ),
        Target(
            "unchanged re-ingest",
            "re-ingest time <= first ingest time",
            f"{reingest:.2f}x ({rate['reingest']:,.0f} vs {rate['bulk']:,.0f} rows/s)",
            reingest <= 1.0,
        ),
    ]


def _consolidation_targets(case: Case) -> list[Target]:
    names = list(case.results)
    one, four = names[0], names[-1]
    speedup = case.ratios[f"{one}/{four}"]
    duplicates = case.info["duplicates"]
    rates = ", ".join(f"{n}: {m.rate:,.0f} rows/s" for n, m in case.results.items())
    return [
        Target(
            f"consolidation, {four} vs {one}",
            "rate >= 1.5x one consolidator's",
            f"{speedup:.2f}x ({rates})",
            speedup >= 1.5,
        ),
        Target(
            "consolidation duplicates",
            "0 rows claimed twice, none lost",
            f"{duplicates} duplicates over {case.info['runs_verified']} verified runs",
            duplicates == 0,
        ),
    ]


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs"

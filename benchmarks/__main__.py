"""`python -m benchmarks [--rows N] [--quick] [--only a,b] [--rebuild] [--build-only]`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from rich.console import Console

from diamond_db import Database

from . import (
    baselines,
    consolidation,
    dashboard,
    facets,
    feeds,
    ingest,
    ingest_candidates,
    ingest_memory,
    jobs,
    lookups,
    migration,
    picture,
    quick,
    search,
    throughput,
    upserts,
)
from .curve import cost_curve
from .dataset import Dataset, bench_server, prepare
from .memory import PeakWindow
from .picture import write_picture
from .plan import Bench, Plan
from .report import git_revision, machine, markdown, print_report, write_results
from .targets import evaluate

QUICK_ROWS: Final = 20_000
# name -> (scenario, what it streams through the process, for the memory table)
SCENARIOS: Final[dict[str, tuple[Callable[[Bench], Awaitable[None]], Callable[[Plan], int]]]] = {
    "search": (search.run, lambda p: p.rows),
    "lookups": (lookups.run, lambda p: p.lookups),
    "throughput": (throughput.run, lambda p: 0),
    "facets": (facets.run, lambda p: 0),
    "quick": (quick.run, lambda p: 0),
    "upserts": (upserts.run, lambda p: p.upsert_batch + p.upsert_singles),
    "ingest": (ingest.run, lambda p: p.ingest_rows),
    "ingest_memory": (ingest_memory.run, lambda p: max(p.memory_sizes)),
    "ingest_candidates": (ingest_candidates.run, lambda p: p.ingest_rows),
    "consolidation": (consolidation.run, lambda p: p.consolidation_rows),
    "migration": (migration.run, lambda p: 0),
    "dashboard": (dashboard.run, lambda p: 0),
    "feeds": (feeds.run, lambda p: p.claim_batch),
    "jobs": (jobs.run, lambda p: 0),
}


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--rows",
        type=_sizes,
        help="diamonds in the database (default 1,000,000); a comma-separated list runs "
        "every size in turn and adds the cost curve (e.g. 100000,300000,1000000)",
    )
    parser.add_argument("--seed", type=int, default=0, help="synthetic inventory seed (default 0)")
    parser.add_argument(
        "--quick", action="store_true", help=f"CI smoke run: {QUICK_ROWS:,} rows, small scenarios"
    )
    parser.add_argument(
        "--only", help=f"comma-separated scenarios to run, of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        help="at most this many measured rounds per scenario (a quicker, noisier run)",
    )
    parser.add_argument(
        "--rebuild", action="store_true", help="rebuild the database, even if cached"
    )
    parser.add_argument(
        "--build-only", action="store_true", help="build (or check) the database, measure nothing"
    )
    args = parser.parse_args(argv)
    if args.rows is not None and min(args.rows) < 1_000:
        parser.error("--rows must be at least 1,000")
    only = set(args.only.split(",")) if args.only else set(SCENARIOS)
    if only - set(SCENARIOS):
        parser.error(f"unknown scenario(s): {', '.join(sorted(only - set(SCENARIOS)))}")
    args.only = only
    return args


def _sizes(text: str) -> list[int]:
    return sorted({int(part.replace("_", "")) for part in text.split(",") if part.strip()})


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    sizes = args.rows or [QUICK_ROWS if args.quick else 1_000_000]
    # Wide tables stay readable in CI logs and nohup files (rich assumes 80 columns there).
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
    logging.getLogger("psycopg").setLevel(logging.ERROR)  # the pool's retry chatter
    started = time.perf_counter()
    runs: list[tuple[Plan, Dataset, Bench]] = []
    with bench_server() as server:
        console.print(f"server: {server.kind}")
        for rows in sizes:
            plan = Plan.quick_plan(rows, args.seed) if args.quick else Plan(rows, args.seed)
            if args.rounds:
                plan = plan.with_rounds(args.rounds)
            dataset = prepare(server, plan.rows, plan.seed, rebuild=args.rebuild, console=console)
            if args.build_only:
                continue
            console.rule(f"{rows:,} diamonds")
            bench = asyncio.run(run_scenarios(dataset, plan, console, args.only))
            if dataset.memory is not None:
                bench.memory.insert(0, dataset.memory)
            runs.append((plan, dataset, bench))
    if not runs:
        return 0
    plan, dataset, bench = runs[-1]  # the largest size's figures are the report's
    curve = cost_curve([(p.rows, b.cases) for p, _, b in runs]) if len(runs) > 1 else None
    targets = evaluate(bench.cases)
    document = {
        "meta": {
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "machine": machine(),
            "postgres": bench.info.pop("postgres"),
            "server": server.kind,
            "revision": git_revision(),
            "total_seconds": time.perf_counter() - started,
        },
        "plan": plan.to_json(),
        "dataset": dataset.to_json(),
        "cases": [c.to_json() for c in bench.cases],
        "memory": [w.to_json() for w in bench.memory],
        "targets": [t.to_json() for t in targets],
        "info": bench.info,
        "curve": curve,
        "smaller_sizes": [
            {"plan": p.to_json(), "dataset": d.to_json(), "cases": [c.to_json() for c in b.cases]}
            for p, d, b in runs[:-1]
        ],
    }
    print_report(console, bench.cases, bench.memory, targets, bench.info, curve)
    path = write_results(document, markdown(document, bench.cases, bench.memory, targets))
    title = f"diamond_db benchmarks, {plan.rows:,} diamonds, {time.strftime('%Y-%m-%d %H:%M')}"
    if not picture.available():
        console.print(f"picture skipped: {picture.MISSING}", markup=False)
    elif drawn := write_picture(path.with_suffix(".png"), title, bench.cases, curve):
        console.print(f"picture: {drawn}", markup=False)
    console.print(f"results: {path} (and .md); {time.perf_counter() - started:.0f} s in all")
    return 0


async def run_scenarios(dataset: Dataset, plan: Plan, console: Console, only: set[str]) -> Bench:
    """Every selected scenario in turn, each in its own peak-memory window."""
    async with Database(dataset.url, min_size=4, max_size=16, slow_query_threshold=3600) as db:
        bench = Bench(db, dataset.url, plan, console)
        async with db.pool.connection() as conn:
            version = await baselines.server_version(conn)
        bench.info["postgres"] = version.split(" on ")[0]
        bench.info["rows"] = plan.rows
        for name, (scenario, streamed) in SCENARIOS.items():
            if name not in only:
                continue
            console.rule(name)
            scenario_started = time.perf_counter()
            with PeakWindow(name, streamed(plan)) as window:
                await scenario(bench)
            bench.memory.append(window)
            console.print(f"  {name}: {time.perf_counter() - scenario_started:.0f} s")
    return bench


def _entry() -> Any:
    sys.exit(main())


if __name__ == "__main__":
    _entry()

"""Scenario: the operations dashboard's read models against a single COUNT(*) of live diamonds.

The issue's targets, at 1,000,000 diamonds and 1,000 runs: get_dashboard_summary
within 2x of `SELECT count(*) FROM diamonds WHERE status = 'active'` (same
rounds, paired), list_runs page 1 within 1x. The benchmark adds its runs (3
partitions and worker runs each, one an hour, as a feed's hourly incremental
runs: about 6 weeks of history, 168 of them in the summary's 7-day window)
under a supplier of its own and removes them afterwards, so the database stays
as built.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import psycopg

from diamond_db import default_registry

from . import baselines
from .plan import Bench
from .stats import Contender, alternate

SCENARIO: Final = "dashboard"
INDEX_ONLY: Final = "Index Only Scan using diamonds_live_supplier_availability_idx"


async def run(bench: Bench) -> None:
    plan = bench.plan
    db = bench.db
    async with db.pool.connection() as conn:
        await baselines.delete_dashboard_runs(conn)
        await baselines.add_dashboard_runs(conn, plan.dashboard_runs)
    with psycopg.connect(bench.url, autocommit=True) as sync:
        for table in ("run_metadata", "partition_progress", "worker_runs"):
            baselines.vacuum_analyze(sync, table)
    try:
        await _measure(bench)
    finally:
        async with db.pool.connection() as conn:
            await baselines.delete_dashboard_runs(conn)


async def _measure(bench: Bench) -> None:
    plan = bench.plan
    db = bench.db

    async def count(_: int) -> None:
        async with db.pool.connection() as conn:
            assert await baselines.count_live(conn) > 0

    async def summary(_: int) -> None:
        assert (await db.get_dashboard_summary()).live_diamonds > 0

    async def list_runs(_: int) -> None:
        assert len((await db.list_runs()).items) == 50

    case = await alternate(
        SCENARIO,
        f"summary and list_runs page 1 ({plan.dashboard_runs:,} runs)",
        [
            Contender("count", count),
            Contender("summary", summary),
            Contender("list_runs", list_runs),
        ],
        rounds=plan.dashboard_rounds,
        warmup=plan.dashboard_warmup,
    )
    case.ratio("summary", "count")
    case.ratio("list_runs", "count")
    async with db.pool.connection() as conn:
        statement = default_registry()["get_dashboard_summary"].sql
        shown = await baselines.explain_plan(
            conn, statement, {"stalled_after": timedelta(minutes=15)}
        )
    case.info["index_only"] = INDEX_ONLY in shown
    case.info["summary_plan"] = shown
    bench.add(case)

"""Scenario 4: N pending raw rows claimed and marked by 1, 2 and 4 concurrent consolidators.

The rows are ingested once (through upsert_raw_diamonds, streamed in chunks);
before each timed run every row is sent back to pending (untimed). A
consolidator loops claim_unconsolidated_raw_diamonds(batch) ->
mark_as_consolidated(ids) until the queue is empty. After each run (untimed)
every row must be done, and no id may have been claimed twice: the run fails
otherwise.

Each consolidator is its own process with its own Database, as the platform
runs them (and so Python's work, decoding the claimed payloads, is not
serialised by one interpreter). The processes start and connect untimed,
then wait at a barrier; the time runs from the barrier until the last one
finds the queue empty (time.perf_counter is the system-wide monotonic clock).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any, Final

from diamond_db import Database
from diamond_db.synthetic import batched

from . import baselines
from .memory import PeakWindow, peak_rss
from .payloads import full_inputs
from .plan import Bench
from .stats import Contender, alternate

SCENARIO: Final = "consolidation"
INGEST_CHUNK: Final = 10_000


class DuplicateClaim(AssertionError):
    """Two consolidators received the same row, or a row was never consolidated."""


async def run(bench: Bench) -> None:
    plan = bench.plan
    db = bench.db
    n = plan.consolidation_rows
    run_id = (await db.create_run_metadata("full", 1)).run_id
    async with db.pool.connection() as conn:
        await baselines.empty_raw_table(conn)
    for chunk in batched(full_inputs(n, plan.seed, start=60_000_000), INGEST_CHUNK):
        await db.upsert_raw_diamonds(run_id, chunk)  # streamed: one chunk in memory at a time
    claimed: dict[int, list[list[str]]] = {}
    duplicates: list[int] = []
    child_peaks: list[int] = []

    async def pending(_: int) -> None:
        async with db.pool.connection() as conn:
            await baselines.reset_raw_to_pending(conn)

    def contender(k: int) -> Contender:
        async def consolidate(_: int) -> float:
            seconds, claimed[k], peak = await asyncio.to_thread(
                run_consolidators, bench.url, k, plan.claim_batch
            )
            child_peaks.append(peak)
            return seconds

        async def verify(_: int) -> None:
            every = [i for ids in claimed[k] for i in ids]
            twice = len(every) - len(set(every))
            async with db.pool.connection() as conn:
                counts = await baselines.raw_status_counts(conn)
            duplicates.append(twice)
            if twice or len(set(every)) != n or counts != {"done": n}:
                raise DuplicateClaim(
                    f"{k} consolidators: {twice} rows claimed twice, {len(set(every))} of {n} "
                    f"claimed, statuses {counts}"
                )

        return Contender(f"{k} consolidator{'s' if k > 1 else ''}", consolidate, pending, verify, n)

    contenders = [contender(k) for k in plan.consolidators]
    try:
        case = await alternate(
            SCENARIO, f"claim + mark {n:,} rows", contenders, rounds=plan.consolidation_rounds
        )
    finally:
        async with db.pool.connection() as conn:
            await baselines.empty_raw_table(conn)
    one = contenders[0].name
    for c in contenders[1:]:
        case.ratio(one, c.name)  # > 1: k consolidators are faster than one
    info: dict[str, Any] = {"claim_batch": plan.claim_batch, "duplicates": sum(duplicates)}
    info["runs_verified"] = len(duplicates)
    # The consolidators' own memory (child processes): the largest peak any of them reported.
    info["consolidator_peak_rss_bytes"] = peak = max(child_peaks)
    bench.memory.append(PeakWindow("consolidator process (largest peak)", n, 0, peak))
    case.info.update(info)
    bench.add(case)


def run_consolidators(url: str, k: int, batch: int) -> tuple[float, list[list[str]], int]:
    """Start k consolidator processes, release them together.

    Returns the seconds until the last one finished, the ids each one claimed,
    and the largest peak RSS among them (each reads its own VmHWM).
    """
    context = multiprocessing.get_context("spawn")  # no fork of a process running asyncio
    barrier = context.Barrier(k + 1)
    results = context.Queue()
    processes = [
        context.Process(target=_consolidator, args=(url, f"bench-{k}-{i}", batch, barrier, results))
        for i in range(k)
    ]
    for process in processes:
        process.start()
    barrier.wait(timeout=120)  # every consolidator is connected
    started = time.perf_counter()
    reports = [results.get(timeout=3600) for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise RuntimeError(f"a consolidator process failed (exit code {process.exitcode})")
    failures = [r for r in reports if isinstance(r, str)]
    if failures:
        raise RuntimeError(f"a consolidator failed: {failures[0]}")
    ended = max(r[0] for r in reports)
    return ended - started, [r[1] for r in reports], max(r[2] for r in reports)


def _consolidator(url: str, name: str, batch: int, barrier: Any, results: Any) -> None:
    """One consolidator process: claim and mark until the queue is empty; report (end, ids)."""
    try:
        results.put(asyncio.run(_consolidate(url, name, batch, barrier)))
    except BaseException as error:  # reported to the parent, which fails the run
        results.put(f"{name}: {type(error).__name__}: {error}")
        raise


async def _consolidate(
    url: str, name: str, batch: int, barrier: Any
) -> tuple[float, list[str], int]:
    ids: list[str] = []
    async with Database(url, min_size=1, max_size=1, slow_query_threshold=3600) as db:
        await db.get_unconsolidated_count()  # connected before the clock starts
        await asyncio.to_thread(barrier.wait, 120)
        while rows := await db.claim_unconsolidated_raw_diamonds(batch, name):
            claimed = [row.id for row in rows]
            ids.extend(str(i) for i in claimed)
            await db.mark_as_consolidated(claimed)
        return time.perf_counter(), ids, peak_rss()

"""Scenario: how much a process grows during one upsert_raw_diamonds call, by batch size.

For each size (20,000 and 100,000 full-size payloads; --quick: 2,000 and 5,000) into an
empty raw table, one call each, each in a fresh process (spawned, its own Database), so
memory an earlier call left to the allocator cannot hide this one's growth:
- list: the rows built beforehand (held by the caller, as a worker's page is), then passed
  as a list: every row is checked before anything is sent
- iterator: a generator producing the rows as the call consumes them (nothing held)

The figure is the peak RSS growth during the call over the canonical JSON bytes it
sends; the target is at most 1.5x at every size (flat per row as batches grow).
"""

from __future__ import annotations

import asyncio
import gc
import multiprocessing
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from typing import Final
from uuid import UUID

import orjson

from diamond_db import Database, RawDiamondInput

from . import baselines, memory
from .payloads import full_inputs
from .plan import Bench
from .stats import Case, Measured

SCENARIO: Final = "ingest_memory"
START: Final = 70_000_000  # stone numbers of their own
FORMS: Final = ("list", "iterator")


async def run(bench: Bench) -> None:
    db = bench.db
    run_id = (await db.create_run_metadata("full", 1)).run_id
    context = multiprocessing.get_context("spawn")  # no fork of a process running asyncio
    loop = asyncio.get_running_loop()
    for size in bench.plan.memory_sizes:
        json_bytes = sum(
            len(orjson.dumps(r.payload, option=orjson.OPT_SORT_KEYS))
            for r in full_inputs(size, bench.plan.seed, start=START)
        )
        case = Case(SCENARIO, f"upsert_raw_diamonds memory, {size:,} rows", {})
        case.info.update(rows=size, json_bytes=json_bytes)
        for form in FORMS:
            async with db.pool.connection() as conn:
                await baselines.empty_raw_table(conn)
            with ProcessPoolExecutor(1, mp_context=context) as child:
                seconds, growth = await loop.run_in_executor(
                    child, _measure, bench.url, run_id, form, size, bench.plan.seed
                )
            case.results[form] = Measured(form, [seconds], size, growth)
            case.info[f"{form}/json"] = growth / json_bytes
        bench.console.print(
            f"  {size:,} rows, {json_bytes / 2**20:,.0f} MiB of JSON: growth "
            + ", ".join(f"{form} {case.info[f'{form}/json']:.2f}x" for form in FORMS)
        )
        bench.add(case)
    async with db.pool.connection() as conn:
        await baselines.empty_raw_table(conn)


def _measure(url: str, run_id: UUID, form: str, size: int, seed: int) -> tuple[float, int]:
    """In the child: one call; its seconds and the peak RSS growth during it."""
    return asyncio.run(_call(url, run_id, form, size, seed))


async def _call(url: str, run_id: UUID, form: str, size: int, seed: int) -> tuple[float, int]:
    async with Database(url, min_size=1, max_size=1, slow_query_threshold=3600) as db:
        await db.get_unconsolidated_count()  # the connection and its buffers exist before
        rows = _rows(form, size, seed)
        gc.collect()
        memory.reset_peak()
        before = memory.current_rss()
        started = time.perf_counter()
        written = await db.upsert_raw_diamonds(run_id, rows)
        seconds = time.perf_counter() - started
        growth = memory.peak_rss() - before
    assert written == size, f"{form}: wrote {written} of {size}"
    return seconds, growth


def _rows(form: str, size: int, seed: int) -> Iterable[RawDiamondInput]:
    """The input: built beforehand (a list) or produced as the call consumes it."""
    rows = full_inputs(size, seed, start=START)
    return list(rows) if form == "list" else rows

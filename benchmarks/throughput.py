"""Scenario: throughput under concurrency, the library vs raw psycopg on the same pool.

N = 1, 8 and 32 clients (tasks) each run a closed loop for a fixed time: the six
searches of benchmarks/search.py at page 1 with count="capped", then two point
lookups, over and over (each client starts at a different place in the mix).
- library: search_diamonds and get_diamond_by_id
- raw:     the same statements (render_search's text, the registry's get_diamond_by_id)
           through plain psycopg: a psycopg_pool pool of the library's size, psycopg's
           defaults except autocommit and no prepared statements (as the library's pool)
Each N alternates library and raw for a few rounds (A B, B A, ...). Reported per N:
searches per second and p50/p95 of the search latencies, lookups per second, and the
paired ratios library/raw (median over rounds).
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from diamond_db import DiamondSearch, default_registry, render_search

from . import baselines
from .plan import Bench
from .search import QUERIES
from .stats import Case, Measured, percentile

SCENARIO: Final = "throughput"
CONTENDERS: Final = ("library", "raw")
LOOKUPS_PER_MIX: Final = 2

Operation = Callable[[int], Awaitable[None]]


async def run(bench: Bench) -> None:
    plan = bench.plan
    async with bench.db.pool.connection() as conn:
        ids = await baselines.sample_diamond_ids(conn, 1_000, plan.seed)
    size = bench.db.pool.max_size
    async with AsyncConnectionPool[AsyncConnection[Any]](
        bench.url,
        min_size=size,
        max_size=size,
        kwargs={"autocommit": True, "prepare_threshold": None},
        open=False,
    ) as raw_pool:
        await raw_pool.wait()
        mixes = {name: _mix(bench, name, ids, raw_pool) for name in CONTENDERS}
        await _clients(bench, mixes)


async def _clients(bench: Bench, mixes: dict[str, list[tuple[str, Operation]]]) -> None:
    """Each N of clients, library and raw alternated for the plan's rounds."""
    plan = bench.plan
    for clients in plan.throughput_clients:
        counted: dict[str, list[tuple[int, int, float]]] = {name: [] for name in CONTENDERS}
        latencies: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        p95s: dict[str, list[float]] = {name: [] for name in CONTENDERS}
        for r in range(plan.throughput_rounds):
            order = CONTENDERS if r % 2 == 0 else tuple(reversed(CONTENDERS))
            for name in order:
                searches, lookups, elapsed, samples = await _closed_loops(
                    mixes[name], clients, plan.throughput_seconds
                )
                counted[name].append((searches, lookups, elapsed))
                latencies[name] += samples
                p95s[name].append(percentile(samples, 95))
        bench.add(_case(clients, counted, latencies, p95s))
        case = bench.cases[-1]
        bench.console.print(
            f"  {clients} clients: library {case.info['library_searches_per_s']:,.0f} "
            f"searches/s, raw {case.info['raw_searches_per_s']:,.0f} "
            f"({case.ratios['library/raw throughput']:.2f}x)"
        )


def _mix(
    bench: Bench, contender: str, ids: list[Any], raw_pool: AsyncConnectionPool[Any]
) -> list[tuple[str, Operation]]:
    """The loop's operations in order: six searches, then point lookups."""
    db = bench.db
    lookup_sql = default_registry()["get_diamond_by_id"].sql.encode()
    searches = [DiamondSearch(**filters, count="capped") for filters in QUERIES.values()]
    operations: list[tuple[str, Operation]] = []
    for search in searches:
        rendered = render_search(search)
        if contender == "library":

            async def library_search(_: int, search: DiamondSearch = search) -> None:
                await db.search_diamonds(search)

            operations.append(("search", library_search))
        else:

            async def raw_search(
                _: int, sql: bytes = rendered.sql.encode(), params: Any = rendered.params
            ) -> None:
                async with raw_pool.connection() as conn:
                    cur = await conn.execute(sql, params)
                    await cur.fetchall()

            operations.append(("search", raw_search))

    async def library_lookup(i: int) -> None:
        assert await db.get_diamond_by_id(ids[i % len(ids)]) is not None

    async def raw_lookup(i: int) -> None:
        async with raw_pool.connection() as conn:
            cur = await conn.execute(lookup_sql, {"id": ids[i % len(ids)]})
            assert await cur.fetchone() is not None

    lookup = library_lookup if contender == "library" else raw_lookup
    return operations + [("lookup", lookup)] * LOOKUPS_PER_MIX


async def _closed_loops(
    mix: list[tuple[str, Operation]], clients: int, seconds: float
) -> tuple[int, int, float, list[float]]:
    """Searches and lookups done by `clients` loops in `seconds`, and the search latencies."""
    done = {"search": 0, "lookup": 0}
    samples: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client(number: int) -> None:
        step = number * 3  # clients start at different places of the mix
        while time.perf_counter() < deadline:
            kind, operation = mix[step % len(mix)]
            started = time.perf_counter()
            await operation(step + number * 1_000)
            if kind == "search":
                samples.append(time.perf_counter() - started)
            done[kind] += 1
            step += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(n) for n in range(clients)))
    return done["search"], done["lookup"], time.perf_counter() - started, samples


def _case(
    clients: int,
    counted: dict[str, list[tuple[int, int, float]]],
    latencies: dict[str, list[float]],
    p95s: dict[str, list[float]],
) -> Case:
    results = {name: Measured(name, latencies[name]) for name in CONTENDERS}
    case = Case(SCENARIO, f"{clients} clients", results)
    case.info["clients"] = clients
    rates: dict[str, list[float]] = {}
    for name in CONTENDERS:
        rates[name] = [s / elapsed for s, _, elapsed in counted[name]]
        lookups = sum(n for _, n, _ in counted[name])
        case.info[f"{name}_searches_per_s"] = statistics.median(rates[name])
        case.info[f"{name}_lookups_per_s"] = lookups / sum(e for _, _, e in counted[name])
        case.info[f"{name}_p50_s"] = results[name].median
        case.info[f"{name}_p95_s"] = results[name].p95
    pairs = zip(rates["library"], rates["raw"], strict=True)
    case.ratios["library/raw throughput"] = statistics.median(a / b for a, b in pairs)
    p95_pairs = zip(p95s["library"], p95s["raw"], strict=True)
    case.ratios["library/raw p95"] = statistics.median(a / b for a, b in p95_pairs)
    return case

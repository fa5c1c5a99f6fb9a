"""Measure migration 0007's search indexes: their build, their write cost, the sorts without one.

    python tests/measure_search_indexes.py [--diamonds 200000] [--rounds 7]

On a throw-away server (the resolver of diamond_db._server), a bootstrapped database gets
N synthetic diamonds through upsert_diamonds (diamond_db.synthetic, as `diamond-db seed`),
with 0007's indexes dropped, then VACUUM ANALYZE. It prints:
- each 0007 index's CREATE INDEX CONCURRENTLY time and size (the `-- cost:` rates);
- batch upsert rows/s, median of R rounds of 1,000 new diamonds and of 1,000 existing
  ones repriced, without any 0007 index and with one (each in turn), then with all four;
  each "with" measured between two "without" runs, and compared with their mean, so a
  drift of a shared machine falls on both sides;
- every new sort's page 1 and a cursor page 50 pages deep (count="none", both directions),
  without 0007's indexes and with them.
Not a test: it takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg

from diamond_db import Database
from diamond_db._resources import data_dir
from diamond_db._server import resolve_server
from diamond_db.migrations import index_names, load_migrations
from diamond_db.synthetic import seed_diamonds, synthetic_diamonds

SEED = 7
NEW_SUPPLIER = "measure-new"
NEW_SORTS = (
    "ratio", "certificate_lab", "fluorescence_intensity", "fancy_color", "table_pct", "depth_pct"
)  # fmt: skip


def index_statements() -> list[tuple[str, str]]:
    """(name, CREATE INDEX statement) of each index migration 0007 builds."""
    [migration] = [
        m for m in load_migrations(data_dir("sql") / "migrations") if m.version == "0007"
    ]
    steps = [step.sql for step in migration.steps() if index_names(step.sql)]
    return [(index_names(sql)[0], sql) for sql in steps]


async def median_seconds(run: Callable[[int], Awaitable[None]], rounds: int) -> float:
    """Median wall time of `rounds` calls after one warm-up call."""
    await run(-1)
    samples = []
    for r in range(rounds):
        started = time.perf_counter()
        await run(r)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def upsert_rates(db: Database, url: str, rounds: int) -> tuple[float, float]:
    """Rows/s of a batch of 1,000 new diamonds, and of 1,000 existing ones repriced."""
    timings: dict[str, list[float]] = {"insert": [], "update": []}
    for r in range(-1, rounds):  # round -1 warms up
        new = [
            dataclasses.replace(d, supplier=NEW_SUPPLIER)
            for d in synthetic_diamonds(1_000, 100 + r)
        ]
        existing = [
            dataclasses.replace(d, supplier_price_cents=d.supplier_price_cents + 2 + r)
            for d in synthetic_diamonds(1_000, SEED)
        ]
        for kind, batch in (("insert", new), ("update", existing)):
            started = time.perf_counter()
            assert await db.upsert_diamonds(batch) == 1_000
            if r >= 0:
                timings[kind].append(time.perf_counter() - started)
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("DELETE FROM diamonds WHERE supplier = %s", [NEW_SUPPLIER])
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM diamonds")
    return (
        1_000 / statistics.median(timings["insert"]),
        1_000 / statistics.median(timings["update"]),
    )


async def sort_times(db: Database) -> dict[str, tuple[float, float]]:
    """Per new sort and direction: (page 1, cursor page 51) median seconds, count="none"."""
    found: dict[str, tuple[float, float]] = {}
    for sort_by in NEW_SORTS:
        for order in ("asc", "desc"):
            search: dict[str, Any] = {"sort_by": sort_by, "sort_order": order, "count": "none"}
            cursor = (await db.search_diamonds(**search, page=50)).next_cursor

            async def first(_: int, search: dict[str, Any] = search) -> None:
                await db.search_diamonds(**search)

            async def deep(_: int, search: dict[str, Any] = search, c: Any = cursor) -> None:
                await db.search_diamonds(**search, cursor=c)

            found[f"{sort_by} {order}"] = (
                await median_seconds(first, 5),
                await median_seconds(deep, 5),
            )
    return found


def build(url: str, name: str, sql: str) -> tuple[float, str]:
    """Build one index concurrently: seconds and size."""
    with psycopg.connect(url, autocommit=True) as conn:
        started = time.perf_counter()
        conn.execute(sql.encode())
        seconds = time.perf_counter() - started
        size = conn.execute("SELECT pg_size_pretty(pg_relation_size(%s::REGCLASS))", [name])
        row = size.fetchone()
    assert row is not None
    return seconds, str(row[0])


def drop(url: str, names: list[str]) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP INDEX IF EXISTS "{name}"'.encode())
        conn.execute("VACUUM ANALYZE diamonds")


async def measure(url: str, diamonds: int, rounds: int) -> None:
    indexes = index_statements()
    names = [name for name, _ in indexes]
    drop(url, names)
    async with Database(url, min_size=2, slow_query_threshold=3600) as db:
        started = time.perf_counter()
        await seed_diamonds(db, diamonds, seed=SEED)
        print(f"seeded {diamonds:,} diamonds in {time.perf_counter() - started:.0f} s")
        drop(url, [])
        unindexed = _ms(await sort_times(db))
        print(f"sorts without 0007's indexes, page 1 / cursor page 51 (ms): {unindexed}")
        print("batch upsert rows/s (insert, update), with vs without (mean of the runs around):")
        for group in [[i] for i in indexes] + [indexes]:
            before = await upsert_rates(db, url, rounds)
            for name, sql in group:
                seconds, size = build(url, name, sql)
                print(f"  built {name}: {seconds:.2f} s ({diamonds / seconds:,.0f} rows/s), {size}")
            during = await upsert_rates(db, url, rounds)
            if len(group) == len(indexes):
                print(f"  sorts with them (ms): {_ms(await sort_times(db))}")
            drop(url, [name for name, _ in group])
            after = await upsert_rates(db, url, rounds)
            without = [(b + a) / 2 for b, a in zip(before, after, strict=True)]
            label = "all four" if len(group) > 1 else group[0][0]
            costs = ", ".join(
                f"{w:,.0f} -> {d:,.0f} ({d / w - 1:+.1%})"
                for w, d in zip(without, during, strict=True)
            )
            print(f"  {label}: {costs}")


def _ms(times: dict[str, tuple[float, float]]) -> str:
    return "".join(f"\n    {k}: {a * 1e3:.1f} / {b * 1e3:.1f}" for k, (a, b) in times.items())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diamonds", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    server = resolve_server()
    try:
        with server.database("measure_search_indexes") as url:
            asyncio.run(measure(url, args.diamonds, args.rounds))
    finally:
        server.close()


if __name__ == "__main__":
    main()

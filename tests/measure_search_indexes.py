"""Measure migration 0007's search indexes: their build, their write cost, the sorts without one.

    python tests/measure_search_indexes.py [--diamonds 200000] [--rounds 7]

On a throw-away server (the resolver of diamond_db._server), a bootstrapped database gets
N synthetic diamonds (diamond_db.synthetic) through upsert_diamonds, batches of 5,000, each
given the grading values 0007 indexes (ratio by shape, table and depth %, 2% fancy colours),
with 0007's indexes dropped, then VACUUM ANALYZE. It prints:
- each 0007 index's CREATE INDEX CONCURRENTLY time and size (the `-- cost:` rates);
- batch upsert rows/s, median of R rounds of 1,000 new diamonds and of 1,000 existing
  ones repriced, without any 0007 index and with one (each in turn), then with all four;
  each "with" measured between two "without" runs, and compared with their mean, so a
  drift of a shared machine falls on both sides;
- every new sort's page 1 and a cursor page 50 pages deep (count="none", both directions),
  without 0007's indexes and with them; with --sorts-only, also page 1 under a storefront's
  filters (FILTERED), and nothing else.
Not a test: it takes a few minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import random
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

import psycopg

from diamond_db import Database, DiamondInput
from diamond_db._resources import data_dir
from diamond_db._server import resolve_server
from diamond_db.migrations import index_names, load_migrations
from diamond_db.synthetic import synthetic_diamonds

SEED = 7
NEW_SUPPLIER = "measure-new"
NEW_SORTS = (
    "ratio", "certificate_lab", "fluorescence_intensity", "fancy_color", "table_pct", "depth_pct"
)  # fmt: skip


def graded(diamonds: Iterable[DiamondInput], rng: random.Random) -> list[DiamondInput]:
    """The diamonds with the values 0007's indexes hold: ratio, table %, depth %, fancy colour."""
    return [
        dataclasses.replace(
            d,
            ratio=Decimal(rng.randint(1000, 1030 if d.shape == "ROUND" else 1800)).scaleb(-3),
            table_pct=Decimal(rng.randint(520, 660)).scaleb(-1),
            depth_pct=Decimal(rng.randint(580, 680)).scaleb(-1),
            fancy_color=rng.choice(["Yellow", "Pink", "Blue"]) if rng.random() < 0.02 else None,
        )
        for d in diamonds
    ]


async def seed(db: Database, diamonds: int) -> None:
    rng = random.Random(SEED)
    source = synthetic_diamonds(diamonds, SEED)
    while batch := graded(itertools.islice(source, 5_000), rng):
        await db.upsert_diamonds(batch)


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
        rng = random.Random(r)
        new = graded(
            (dataclasses.replace(d, supplier=NEW_SUPPLIER) for d in synthetic_diamonds(1_000, r)),
            rng,
        )
        existing = graded(
            (
                dataclasses.replace(d, supplier_price_cents=d.supplier_price_cents + 2 + r)
                for d in synthetic_diamonds(1_000, SEED)
            ),
            rng,
        )
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


# A storefront's grade filters (the README search without its price range).
FILTERED: dict[str, Any] = {
    "shape": "ROUND",
    "carat_min": 1,
    "carat_max": 2,
    "colors": ["D", "E", "F"],
    "clarities": ["VVS1", "VVS2", "VS1"],
    "lab_grown": False,
}


async def filtered_sort_times(db: Database) -> dict[str, float]:
    """Per new sort and direction: page 1 under FILTERED, median seconds, count="none"."""
    found: dict[str, float] = {}
    for sort_by in NEW_SORTS:
        for order in ("asc", "desc"):

            async def first(_: int, sort_by: str = sort_by, order: str = order) -> None:
                await db.search_diamonds(**FILTERED, sort_by=sort_by, sort_order=order)

            found[f"{sort_by} {order}"] = await median_seconds(first, 5)
    return found


async def sorts_only(url: str, diamonds: int) -> None:
    names = [name for name, _ in index_statements()]
    drop(url, names)
    async with Database(url, min_size=2, slow_query_threshold=3600) as db:
        await seed(db, diamonds)
        drop(url, [])
        print(f"{diamonds:,} diamonds; page 1 / cursor page 51 (ms), then page 1 filtered:")
        print(f"  without 0007's indexes: {_ms(await sort_times(db))}")
        print(f"  filtered: {_ms(await filtered_sort_times(db))}")
        for name, sql in index_statements():
            build(url, name, sql)
        print(f"  with them: {_ms(await sort_times(db))}")
        print(f"  filtered: {_ms(await filtered_sort_times(db))}")


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
        await seed(db, diamonds)
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


def _ms(times: Mapping[str, tuple[float, float] | float]) -> str:
    return "".join(
        f"\n    {k}: " + " / ".join(f"{x * 1e3:.1f}" for x in (t if isinstance(t, tuple) else (t,)))
        for k, t in times.items()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--diamonds", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sorts-only", action="store_true")
    args = parser.parse_args()
    server = resolve_server()
    try:
        with server.database("measure_search_indexes") as url:
            if args.sorts_only:
                asyncio.run(sorts_only(url, args.diamonds))
            else:
                asyncio.run(measure(url, args.diamonds, args.rounds))
    finally:
        server.close()


if __name__ == "__main__":
    main()

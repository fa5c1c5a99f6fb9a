"""Scenario: a claim of 1,000 raw rows for one feed, with one feed present vs three.

Issue 13: "a claim on one feed costs what it costs with one feed present".
Two raw databases of their own are built (untimed; the diamonds database is
not used): "one" holds 1 feed x N pending rows (nivoda), "three" holds
3 feeds x N (nivoda in its own partition, rapnet and idex sharing the default
one). Each round claims `claim_batch` rows with claim_unconsolidated_raw_diamonds
in each situation, alternating: nivoda alone, nivoda among three feeds, and a
feed of the default partition (rapnet) among three. Each claim takes the next
oldest rows, as a consolidator's loop does. Reported: median and p95 per claim
and the paired ratios against nivoda alone (1.0: the other feeds cost nothing).
The databases are dropped afterwards.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from typing import Any, Final
from uuid import uuid4

import psycopg
from psycopg.conninfo import make_conninfo

from diamond_db import Database

from . import baselines
from .plan import Bench
from .stats import Case, Contender, alternate

SCENARIO: Final = "feeds"
FEEDS: Final = ("nivoda", "rapnet", "idex")
DATABASES: Final = {"one": FEEDS[:1], "three": FEEDS}
# Pending rows with a ~0.5 KB payload, oldest first by created_at, written in SQL
# (the ingest path is measured elsewhere; here only the queue's size matters).
FILL: Final = """
INSERT INTO raw_diamonds (
    supplier, run_id, supplier_stone_id, offer_id, payload, payload_hash, created_at, updated_at
)
SELECT
    %(feed)s, %(run_id)s, 'stone-' || n, 'offer-' || n,
    jsonb_build_object('n', n, 'feed', %(feed)s::text, 'note', repeat('x', 400)),
    encode(sha256(convert_to(%(feed)s || n, 'UTF8')), 'hex'),
    now() - make_interval(secs => %(rows)s - n),
    now()
FROM generate_series(1, %(rows)s) AS n
"""


def _url(base: str, name: str) -> str:
    return make_conninfo(base, dbname=name)


async def _build(bench: Bench, name: str, feeds: tuple[str, ...], rows: int) -> str:
    """A fresh bootstrapped database holding `rows` pending raw rows per feed; its URL."""
    database = f"bench_feeds_{name}"
    with psycopg.connect(bench.url, autocommit=True) as conn:
        baselines.drop_database(conn, database)
        baselines.create_database(conn, database)
    url = _url(bench.url, database)
    await Database(url).bootstrap()
    with psycopg.connect(url, autocommit=True) as conn:
        for feed in feeds:
            conn.execute(FILL, {"feed": feed, "run_id": uuid4(), "rows": rows})
        baselines.vacuum_analyze(conn, "raw_diamonds")
    return url


async def run(bench: Bench) -> None:
    plan = bench.plan
    rows, batch = plan.feeds_rows, plan.claim_batch
    urls = {name: await _build(bench, name, feeds, rows) for name, feeds in DATABASES.items()}
    try:
        async with AsyncExitStack() as stack:
            dbs: dict[str, Database] = {
                name: await stack.enter_async_context(
                    Database(url, min_size=1, max_size=2, slow_query_threshold=3600)
                )
                for name, url in urls.items()
            }

            def contender(label: str, database: str, feed: str) -> Contender:
                async def claim(_: int) -> None:
                    got = await dbs[database].claim_unconsolidated_raw_diamonds(
                        batch, f"bench-{label}", supplier=feed
                    )
                    assert len(got) == batch
                    assert {r.supplier for r in got} == {feed}

                return Contender(label, claim, items=batch)

            contenders = [
                contender("1 feed: nivoda", "one", "nivoda"),
                contender("3 feeds: nivoda (own partition)", "three", "nivoda"),
                contender("3 feeds: rapnet (default partition)", "three", "rapnet"),
            ]
            case = await alternate(
                SCENARIO,
                f"claim {batch:,} of {rows:,} pending rows per feed",
                contenders,
                rounds=plan.feeds_rounds,
            )
    finally:
        with psycopg.connect(bench.url, autocommit=True) as conn:
            for name in DATABASES:
                baselines.drop_database(conn, f"bench_feeds_{name}")
    alone = contenders[0].name
    for other in contenders[1:]:
        case.ratio(other.name, alone)
    case.info.update(rows_per_feed=rows, feeds=list(FEEDS), claim_batch=batch)
    bench.add(case)
    _print(bench, case)


def _print(bench: Bench, case: Case) -> None:
    figures: list[Any] = [
        f"{name} {m.median * 1e3:.1f} ms (p95 {m.p95 * 1e3:.1f})"
        for name, m in case.results.items()
    ]
    ratios = ", ".join(f"{k} = {v:.2f}" for k, v in case.ratios.items())
    bench.console.print(f"  {case.name}: {'; '.join(figures)}; {ratios}")

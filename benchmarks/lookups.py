"""Scenario 2: get_diamond_by_id over random ids, against the same SQL through raw psycopg.

Each round looks up the next id with both contenders (alternating which goes
first), so every pair compares the same row, same cache state.
"""

from __future__ import annotations

from typing import Final

from diamond_db import default_registry

from . import baselines
from .plan import Bench
from .stats import Contender, alternate

SCENARIO: Final = "lookup"


async def run(bench: Bench) -> None:
    plan = bench.plan
    db = bench.db
    async with db.pool.connection() as conn:
        ids = await baselines.sample_diamond_ids(conn, plan.lookups + plan.lookup_warmup, plan.seed)
    # The library's own statement text, run as plain psycopg would.
    statement = default_registry()["get_diamond_by_id"].sql

    async def library(r: int) -> None:
        assert await db.get_diamond_by_id(ids[r]) is not None

    async def raw(r: int) -> None:
        async with db.pool.connection() as conn:
            cur = await conn.execute(statement.encode(), {"id": ids[r]})
            assert await cur.fetchone() is not None

    case = await alternate(
        SCENARIO,
        f"get_diamond_by_id x {len(ids) - plan.lookup_warmup:,}",
        [Contender("library", library), Contender("raw", raw)],
        rounds=len(ids) - plan.lookup_warmup,
        warmup=plan.lookup_warmup,
    )
    case.ratio("library", "raw")
    bench.add(case)

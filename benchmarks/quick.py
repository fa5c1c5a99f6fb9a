"""Scenario: quick_search_diamonds against the original's ILIKE lookup, same texts, same run.

The issue's target: at 1,000,000 diamonds at least 50x faster than the
sequential-scan form `ILIKE text || '%'`. Each round looks up the next sampled
prefix (a stone id, an offer id or a certificate number, in turn) both ways.
"""

from __future__ import annotations

from typing import Final

from . import baselines
from .plan import Bench
from .stats import Contender, alternate

SCENARIO: Final = "quick"
TARGET: Final = 50.0


async def run(bench: Bench) -> None:
    db = bench.db
    rounds = bench.plan.search_rounds * 3
    async with db.pool.connection() as conn:
        texts = await baselines.sample_lookup_texts(conn, rounds + 1, bench.plan.seed)

    async def library(r: int) -> None:
        assert await db.quick_search_diamonds(texts[r])

    async def ilike(r: int) -> None:
        async with db.pool.connection() as conn:
            assert await baselines.ilike_lookup(conn, texts[r])

    case = await alternate(
        SCENARIO,
        f"quick_search_diamonds x {rounds}",
        [Contender("library", library), Contender("ilike", ilike)],
        rounds=rounds,
        warmup=1,
    )
    case.ratio("ilike", "library")
    bench.console.print(f"  ILIKE / quick_search_diamonds: {case.ratios['ilike/library']:.0f}x")
    bench.add(case)

"""Scenario 5: upsert_diamonds in batches of 1,000 vs upsert_diamond one diamond at a time.

Both insert new diamonds into the benchmark's full diamonds table (every index
maintained, as for a consolidator), under a supplier name of their own; the
rows are deleted and the table vacuumed afterwards, so the database stays as
built. Each timed call gets fresh diamonds (generated untimed in its setup).
"""

from __future__ import annotations

import dataclasses
from typing import Final

import psycopg

from diamond_db import DiamondInput
from diamond_db.synthetic import synthetic_diamonds

from . import baselines
from .plan import Bench
from .stats import Contender, Untimed, alternate

SCENARIO: Final = "upsert"
SUPPLIER: Final = "bench-upsert"


def _fresh(rows: int, seed: int) -> list[DiamondInput]:
    return [dataclasses.replace(d, supplier=SUPPLIER) for d in synthetic_diamonds(rows, seed)]


async def run(bench: Bench) -> None:
    plan = bench.plan
    db = bench.db
    pending: dict[str, list[DiamondInput]] = {}
    await _cleanup(bench)

    def generate(name: str, rows: int, offset: int) -> Untimed:
        async def setup(r: int) -> None:
            pending[name] = _fresh(rows, 1_000_000 + 2 * r + offset)

        return setup

    async def batch(_: int) -> None:
        assert await db.upsert_diamonds(pending["batch"]) == plan.upsert_batch

    async def single(_: int) -> None:
        for diamond in pending["single"]:
            await db.upsert_diamond(diamond)

    contenders = [
        Contender(
            "batch", batch, setup=generate("batch", plan.upsert_batch, 0), items=plan.upsert_batch
        ),
        Contender(
            "single",
            single,
            setup=generate("single", plan.upsert_singles, 1),
            items=plan.upsert_singles,
        ),
    ]
    try:
        case = await alternate(
            SCENARIO,
            f"upsert diamonds (batch of {plan.upsert_batch:,})",
            contenders,
            rounds=plan.upsert_rounds,
        )
    finally:
        await _cleanup(bench)
    case.ratio("single", "batch")
    bench.add(case)


async def _cleanup(bench: Bench) -> None:
    async with bench.db.pool.connection() as conn:
        deleted = await baselines.delete_supplier_diamonds(conn, SUPPLIER)
    if deleted:
        with psycopg.connect(bench.url, autocommit=True) as sync:
            baselines.vacuum_analyze(sync, "diamonds")

"""Load: many concurrent operations through a bounded pool; a too-small pool fails fast."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

from helpers import diamond, scalar
from psycopg_pool import PoolTimeout

from diamond_db import Database, DatabaseUnavailable
from diamond_db.testing import reset_database


async def test_500_concurrent_operations_through_a_pool_of_15_all_complete(
    diamond_db_url: str,
) -> None:
    reset_database(diamond_db_url)
    async with Database(diamond_db_url, min_size=2, max_size=15) as db:
        assert await db.upsert_diamonds([diamond(f"seed-{i}") for i in range(20)]) == 20
        seeded = await db.search_diamonds(limit=20)
        run = await db.create_run_metadata("full", 1000)
        operations: list[Awaitable[Any]] = []
        for i in range(500):
            kind = i % 5
            if kind == 0:
                operations.append(db.search_diamonds(colors=["G"], limit=10))
            elif kind == 1:
                operations.append(db.get_diamond_by_id(seeded.items[i % 20].id))
            elif kind == 2:
                operations.append(db.upsert_diamond(diamond(f"load-{i}")))
            elif kind == 3:
                operations.append(db.increment_completed_workers(run.run_id))
            else:
                operations.append(db.create_run_metadata("incremental", 1))
        started = time.monotonic()
        results = await asyncio.gather(*operations)
        elapsed = time.monotonic() - started
        assert len(results) == 500
        assert all(r is not None for r in results)
        assert db.pool.get_stats()["pool_size"] <= 15
        print(f"\n500 concurrent operations through max 15 connections: {elapsed:.2f} s")
    counts = sorted(r.completed_workers for r in results[3::5])
    assert counts == list(range(1, 101))
    assert scalar(diamond_db_url, "SELECT count(*) FROM diamonds") == 120
    assert scalar(diamond_db_url, "SELECT count(*) FROM run_metadata") == 101
    assert (
        scalar(diamond_db_url, "SELECT completed_workers FROM run_metadata WHERE run_type = 'full'")
        == 100
    )


async def test_an_exhausted_tiny_pool_fails_promptly_with_pool_timeout(
    diamond_db_url: str,
) -> None:
    async with Database(diamond_db_url, min_size=1, max_size=1, timeout=0.3) as db:
        async with db.transaction() as tx:  # holds the only connection
            await tx.search_diamonds(limit=1)
            started = time.monotonic()
            outcomes = await asyncio.gather(
                *(db.search_diamonds(limit=1) for _ in range(20)), return_exceptions=True
            )
            elapsed = time.monotonic() - started
        assert all(isinstance(o, PoolTimeout) for o in outcomes), outcomes
        assert not any(isinstance(o, DatabaseUnavailable) for o in outcomes)
        assert elapsed < 0.3 + 1, f"took {elapsed:.2f} s"  # the wait, plus scheduling slack
        assert "max_size=1" in str(outcomes[0])
        assert (await db.search_diamonds(limit=1)).total is not None  # usable once released

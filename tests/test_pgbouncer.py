"""Behind PgBouncer in transaction pooling mode, as on Supabase or any managed pooler.

The `diamond_db_pgbouncer_url` fixture starts PgBouncer (run as the postgres user when we
are root) in front of the session database; skipped with the reason if it is not installed.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import uuid

import psycopg
import pytest
from helpers import diamond, scalar

from diamond_db import Database, RawDiamondInput
from diamond_db.testing import reset_database


def _pgbouncer_version() -> tuple[int, int]:
    done = subprocess.run(["pgbouncer", "--version"], capture_output=True, text=True, check=False)
    found = re.search(r"(\d+)\.(\d+)", done.stdout)
    return (int(found[1]), int(found[2])) if found else (0, 0)


async def test_operations_work_through_a_transaction_pooler(
    diamond_db_pgbouncer_url: str, diamond_db_url: str
) -> None:
    reset_database(diamond_db_url)
    async with Database(diamond_db_pgbouncer_url, max_size=15) as db:
        assert db.settings.prepare_threshold is None
        one = await db.upsert_diamond(diamond("single", color="E"))
        assert await db.upsert_diamonds(
            [diamond(f"bulk-{i}", color="DEF"[i % 3]) for i in range(60)]
        )
        page = await db.search_diamonds(colors=["E"], sort_by="carats", limit=10)
        assert page.total == 21
        assert page.next_cursor is not None
        following = await db.search_diamonds(
            colors=["E"], sort_by="carats", limit=10, cursor=page.next_cursor
        )
        assert not {d.id for d in page.items} & {d.id for d in following.items}
        assert await db.get_diamond_by_id(one.id) == one

        run = await db.create_run_metadata("full", 100)
        rows = [RawDiamondInput(f"raw-{i}", f"o-{i}", {"i": i}) for i in range(200)]
        assert await db.upsert_raw_diamonds(run.run_id, rows) == 200
        claims = await asyncio.gather(
            *(db.claim_unconsolidated_raw_diamonds(25, f"consolidator-{n}") for n in range(8))
        )
        claimed = [row.id for batch in claims for row in batch]
        assert len(claimed) == 200
        assert len(set(claimed)) == 200  # no row claimed twice

        counters = await asyncio.gather(
            *(db.increment_completed_workers(run.run_id) for _ in range(100))
        )
        assert sorted(c.completed_workers for c in counters) == list(range(1, 101))

        with pytest.raises(RuntimeError):
            async with db.transaction() as tx:
                await tx.upsert_diamond(diamond("rolled-back"))
                assert await tx.get_diamond_by_offer_id("offer-rolled-back") is not None
                raise RuntimeError("undo")
        async with db.transaction() as tx:
            await tx.upsert_diamond(diamond("committed"))
            await tx.increment_failed_workers(run.run_id)
    assert scalar(diamond_db_url, "SELECT count(*) FROM diamonds") == 62
    assert (
        scalar(
            diamond_db_url, "SELECT count(*) FROM raw_diamonds_nivoda WHERE claimed_by IS NOT NULL"
        )
        == 200
    )
    assert scalar(diamond_db_url, "SELECT failed_workers FROM run_metadata") == 1


async def _mixed_operations(url: str, prepare_threshold: int | None) -> tuple[int, int]:
    """120 operations, 8 at a time; returns (succeeded, failed)."""
    failed = 0
    async with Database(url, max_size=8, prepare_threshold=prepare_threshold) as db:
        ids = [d.id for d in (await db.search_diamonds(limit=10)).items]

        async def one(i: int) -> None:
            nonlocal failed
            try:
                if i % 3 == 0:
                    await db.search_diamonds(colors=["D", "E"], limit=5)
                elif i % 3 == 1:
                    await db.get_diamond_by_id(ids[i % len(ids)])
                else:
                    await db.get_run_metadata(uuid.uuid4())
            except psycopg.Error:
                failed += 1

        for start in range(0, 120, 8):
            await asyncio.gather(*(one(i) for i in range(start, start + 8)))
    return 120 - failed, failed


async def test_no_server_side_prepares_is_what_a_transaction_pooler_needs(
    diamond_db_pgbouncer_url: str, diamond_db_url: str
) -> None:
    reset_database(diamond_db_url)
    async with Database(diamond_db_url) as direct:
        await direct.upsert_diamonds([diamond(f"p-{i}", color="DE"[i % 2]) for i in range(20)])
    ok, failed = await _mixed_operations(diamond_db_pgbouncer_url, None)
    assert (ok, failed) == (120, 0)
    ok_prepared, failed_prepared = await _mixed_operations(diamond_db_pgbouncer_url, 1)
    print(
        f"\nthrough PgBouncer {'.'.join(map(str, _pgbouncer_version()))} (transaction mode): "
        f"prepare_threshold=None {ok}/120 ok; prepare_threshold=1 {ok_prepared}/120 ok"
    )
    if _pgbouncer_version() < (1, 22):  # no prepared-statement support in transaction mode
        assert failed_prepared > 0


async def test_statement_timeout_works_behind_the_pooler_and_leaks_nothing(
    diamond_db_pgbouncer_url: str, diamond_db_url: str
) -> None:
    reset_database(diamond_db_url)
    async with Database(diamond_db_pgbouncer_url, max_size=2, statement_timeout=0.2) as db:
        run = await db.create_run_metadata("full", 1)
        with psycopg.connect(diamond_db_url) as locker:  # direct, holds the lock
            locker.execute("LOCK TABLE run_metadata IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(psycopg.errors.QueryCanceled) as raised:
                await db.get_run_metadata(run.run_id)
            assert raised.value.sqlstate == "57014"
            locker.rollback()
        assert await db.get_run_metadata(run.run_id) == run
        assert await db.upsert_diamonds([diamond("t1"), diamond("t2")]) == 2
    # Server connections are shared: none of them kept the timeout.
    plain = Database(diamond_db_pgbouncer_url, max_size=4)
    async with plain, plain.pool.connection() as conn:
        for _ in range(8):
            cursor = await conn.execute("SHOW statement_timeout")
            assert await cursor.fetchone() == ("0",)

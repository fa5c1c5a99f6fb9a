"""Read replicas: reader statements go to a real streaming standby, everything else to the primary.

The `diamond_db_replica` fixture builds the standby with pg_basebackup -R from a local
primary; skipped, with the reason, when no local binaries can be used.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from helpers import diamond

import diamond_db
from diamond_db import Database, RawDiamondInput
from diamond_db._default import default_database
from diamond_db.testing import ReplicatedDatabase, reset_database


@pytest.fixture
def replicated(diamond_db_replica: ReplicatedDatabase) -> Iterator[ReplicatedDatabase]:
    reset_database(diamond_db_replica.url)
    diamond_db_replica.wait_for_replay()
    yield diamond_db_replica
    with psycopg.connect(diamond_db_replica.read_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_resume()")


def _replay(read_url: str, paused: bool) -> None:
    with psycopg.connect(read_url, autocommit=True) as conn:
        conn.execute("SELECT pg_wal_replay_pause()" if paused else "SELECT pg_wal_replay_resume()")


async def test_a_diamond_upserted_on_the_primary_becomes_searchable_through_the_replica(
    replicated: ReplicatedDatabase,
) -> None:
    async with Database(replicated.url, read_url=replicated.read_url) as db:
        _replay(replicated.read_url, paused=True)  # the standby now lags on purpose
        stored = await db.upsert_diamond(diamond("lagging"))
        # Reads go to the standby, which has not replayed the write yet ...
        assert (await db.search_diamonds(shape="ROUND")).total == 0
        assert await db.get_diamond_by_id(stored.id) is None
        # ... while db.primary reads its own writes.
        assert (await db.primary.search_diamonds(shape="ROUND")).total == 1
        assert await db.primary.get_diamond_by_id(stored.id) == stored
        _replay(replicated.read_url, paused=False)
        replicated.wait_for_replay()
        page = await db.search_diamonds(shape="ROUND")
        assert [d.id for d in page.items] == [stored.id]
        assert await db.get_diamond_by_offer_id("offer-lagging") == stored


async def test_writes_and_transactions_never_reach_the_replica_pool(
    replicated: ReplicatedDatabase,
) -> None:
    """The standby is read-only: a write sent to it would fail (SQLSTATE 25006)."""
    async with Database(replicated.url, read_url=replicated.read_url) as db:
        await db.search_diamonds()  # opens the replica pool
        read_pool = db.read_pool
        assert read_pool is not None
        reads_before = read_pool.get_stats().get("requests_num", 0)

        run = await db.create_run_metadata("full", 2)
        await db.upsert_diamond(diamond("w1"))
        assert await db.upsert_diamonds([diamond("w2"), diamond("w3")]) == 2
        await db.upsert_raw_diamonds(run.run_id, [RawDiamondInput("r1", "o1", {"a": 1})])
        assert len(await db.claim_unconsolidated_raw_diamonds(10, "c1")) == 1
        assert (await db.increment_completed_workers(run.run_id)).completed_workers == 1
        async with db.transaction() as tx:  # reads inside a transaction: primary
            stored = await tx.upsert_diamond(diamond("tx"))
            assert await tx.get_diamond_by_id(stored.id) == stored
            assert (await tx.search_diamonds(shape="ROUND")).total == 4

        assert read_pool.get_stats().get("requests_num", 0) == reads_before
        await db.get_run_metadata(run.run_id)
        assert read_pool.get_stats().get("requests_num", 0) == reads_before + 1

    standby = psycopg.connect(replicated.read_url, autocommit=True)
    with standby, pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
        standby.execute("INSERT INTO run_metadata (run_type, expected_workers) VALUES ('full', 1)")
    replicated.wait_for_replay()
    with psycopg.connect(replicated.read_url, autocommit=True) as standby:
        row = standby.execute("SELECT count(*) FROM diamonds").fetchone()
    assert row == (4,)


async def test_read_url_comes_from_the_environment_for_the_default_database(
    replicated: ReplicatedDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", replicated.url)
    monkeypatch.setenv("DATABASE_READ_URL", replicated.read_url)
    try:
        await diamond_db.search_diamonds()
        read_pool = default_database.read_pool
        assert read_pool is not None
        assert str(replicated.replica.port) in str(read_pool.conninfo)
    finally:
        await diamond_db.close_pool()

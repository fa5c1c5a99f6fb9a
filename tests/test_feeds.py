"""Several feeds: raw payloads partitioned by supplier, per-feed operations, runs and purge."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID, uuid4

import psycopg
import pytest
from catalog import assert_same_catalog, catalog
from helpers import fetch, scalar

from diamond_db import ClaimsInProgress, Database, RawDiamondInput, ValidationError
from diamond_db._resources import data_dir
from diamond_db._server import Server
from diamond_db.migrations import load_migrations
from diamond_db.registry import default_registry

SHIPPED = data_dir("sql") / "migrations"
# nivoda has its own partition; the other two share the default one.
FEEDS = ("nivoda", "rapnet", "idex")


def rows(count: int, tag: str = "") -> list[RawDiamondInput]:
    return [RawDiamondInput(f"s-{n:05d}", f"o-{n}", {"n": n, "tag": tag}) for n in range(count)]


def partitions(url: str) -> dict[str, dict[str, int]]:
    """Rows per partition and supplier, read behind the library's back."""
    found: dict[str, dict[str, int]] = {}
    for table, supplier, count in fetch(
        url, "SELECT tableoid::regclass::text, supplier, count(*) FROM raw_diamonds GROUP BY 1, 2"
    ):
        found.setdefault(table, {})[supplier] = count
    return found


async def test_every_raw_operation_takes_the_feed(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 1, supplier="rapnet")
    assert run.supplier == "rapnet"
    assert (await diamond_db.create_run_metadata("full", 1)).supplier == "nivoda"
    assert await diamond_db.upsert_raw_diamond(
        run.run_id, "S-1", "O-1", {"a": 1}, supplier="rapnet"
    )
    assert await diamond_db.upsert_raw_diamonds(run.run_id, rows(4), supplier="rapnet") == 4
    assert await diamond_db.get_unconsolidated_count() == 0  # nivoda: nothing
    assert await diamond_db.get_unconsolidated_count(supplier="rapnet") == 5
    assert await diamond_db.get_unconsolidated_raw_diamonds(10) == []
    pending = await diamond_db.get_unconsolidated_raw_diamonds(10, supplier="rapnet")
    assert [r.supplier for r in pending] == ["rapnet"] * 5
    assert await diamond_db.claim_unconsolidated_raw_diamonds(10, "c") == []
    claimed = await diamond_db.claim_unconsolidated_raw_diamonds(3, "c", supplier="rapnet")
    ids = [r.id for r in claimed]
    # Another feed's name changes nothing, even with the right ids.
    assert await diamond_db.mark_as_consolidated(ids) == 0
    assert await diamond_db.mark_as_failed(ids, "x", claimed_by="c") == 0
    assert await diamond_db.reset_stuck_claims(timedelta(0)) == 0
    assert await diamond_db.reset_stuck_claims(timedelta(0), supplier="rapnet") == 3
    claimed = await diamond_db.claim_unconsolidated_raw_diamonds(3, "c", supplier="rapnet")
    ids = [r.id for r in claimed]
    assert await diamond_db.mark_as_failed(ids[:1], "bad", claimed_by="c", supplier="rapnet") == 1
    assert await diamond_db.mark_as_failed(ids[1:2], "bad", supplier="rapnet") == 1
    assert await diamond_db.mark_as_consolidated(ids[2:], claimed_by="c", supplier="rapnet") == 1
    assert await diamond_db.reset_failed_raw_diamonds() == 0
    assert await diamond_db.reset_failed_raw_diamonds(run.run_id, supplier="rapnet") == 2
    assert await diamond_db.get_unconsolidated_count(supplier="rapnet") == 4
    assert partitions(diamond_db_url) == {"raw_diamonds_default": {"rapnet": 5}}

    for bad in ("", "   ", "x" * 101, None, 7):
        with pytest.raises(ValidationError) as raised:
            await diamond_db.get_unconsolidated_count(supplier=bad)  # type: ignore[arg-type]
        assert raised.value.argument == "supplier"
    with pytest.raises(ValidationError, match="supplier"):
        await diamond_db.create_run_metadata("full", 1, supplier="")


async def test_uniqueness_is_per_feed(diamond_db: Database, diamond_db_url: str) -> None:
    run_id = uuid4()
    for feed in FEEDS:
        assert await diamond_db.upsert_raw_diamonds(run_id, rows(3, feed), supplier=feed) == 3
    # The same stone ids in three feeds are three rows each; an unchanged payload stays.
    assert scalar(diamond_db_url, "SELECT count(*) FROM raw_diamonds") == 9
    assert await diamond_db.upsert_raw_diamonds(run_id, rows(3, "idex"), supplier="idex") == 0
    assert await diamond_db.upsert_raw_diamonds(run_id, rows(3, "new"), supplier="idex") == 3
    payloads = dict(
        fetch(
            diamond_db_url,
            "SELECT supplier, payload->>'tag' FROM raw_diamonds"
            " WHERE supplier_stone_id = 's-00000'",
        )
    )
    assert payloads == {"nivoda": "nivoda", "rapnet": "rapnet", "idex": "new"}
    assert partitions(diamond_db_url) == {
        "raw_diamonds_nivoda": {"nivoda": 3},
        "raw_diamonds_default": {"rapnet": 3, "idex": 3},
    }


async def test_four_consolidators_on_three_feeds_see_only_their_feed(
    diamond_db: Database, diamond_db_url: str
) -> None:
    per_feed = 1_500
    run_id = uuid4()
    for feed in FEEDS:
        assert (
            await diamond_db.upsert_raw_diamonds(run_id, rows(per_feed, feed), supplier=feed)
            == per_feed
        )
    # Four consolidators per feed, all twelve at once on one pool.
    workers = [(feed, f"{feed}-{i}") for feed in FEEDS for i in range(4)]

    async def consolidator(db: Database, feed: str, name: str) -> list[UUID]:
        taken: list[UUID] = []
        while batch := await db.claim_unconsolidated_raw_diamonds(50, name, supplier=feed):
            assert {(r.supplier, r.claimed_by) for r in batch} == {(feed, name)}
            assert {r.payload["tag"] for r in batch} == {feed}
            ids = [r.id for r in batch]
            assert await db.mark_as_consolidated(ids, claimed_by=name, supplier=feed) == len(ids)
            taken += ids
        return taken

    async with Database(diamond_db_url, min_size=4, max_size=12) as db:
        results = await asyncio.gather(*(consolidator(db, f, n) for f, n in workers))

    everything = [i for taken in results for i in taken]
    assert len(everything) == len(set(everything)) == per_feed * len(FEEDS)
    # In the database: every row done, by a consolidator of its own feed, and each
    # consolidator's count is what it took.
    stored = fetch(
        diamond_db_url,
        "SELECT supplier, claimed_by, consolidation_status, payload->>'tag', count(*)"
        " FROM raw_diamonds GROUP BY 1, 2, 3, 4",
    )
    assert all(status == "done" for _, _, status, _, _ in stored)
    assert all(holder.startswith(f"{feed}-") and tag == feed for feed, holder, _, tag, _ in stored)
    assert {holder: n for _, holder, _, _, n in stored} == {
        name: len(taken) for (_, name), taken in zip(workers, results, strict=True) if taken
    }
    assert sum(n for *_, n in stored) == per_feed * len(FEEDS)


async def test_purge_own_partition_and_default_partition_feed(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run_id = uuid4()
    for feed in FEEDS:
        await diamond_db.upsert_raw_diamonds(run_id, rows(20, feed), supplier=feed)
    assert await diamond_db.purge_raw_payloads("nivoda") == 20  # its own partition: TRUNCATE
    assert partitions(diamond_db_url) == {"raw_diamonds_default": {"rapnet": 20, "idex": 20}}
    assert await diamond_db.purge_raw_payloads("rapnet") == 20  # the default partition: DELETE
    assert partitions(diamond_db_url) == {"raw_diamonds_default": {"idex": 20}}
    assert await diamond_db.purge_raw_payloads("rapnet") == 0
    assert await diamond_db.purge_raw_payloads("unknown-feed") == 0
    # A full reload after the purge starts from nothing.
    assert await diamond_db.upsert_raw_diamonds(run_id, rows(20, "nivoda")) == 20
    with pytest.raises(ValidationError, match="supplier"):
        await diamond_db.purge_raw_payloads("")


@pytest.mark.parametrize("feed", ["nivoda", "rapnet"])
async def test_purge_refuses_while_claims_are_held(
    diamond_db: Database, diamond_db_url: str, feed: str
) -> None:
    run_id = uuid4()
    for each in FEEDS:
        await diamond_db.upsert_raw_diamonds(run_id, rows(10, each), supplier=each)
    await diamond_db.claim_unconsolidated_raw_diamonds(3, "worker-a", supplier=feed)
    await diamond_db.claim_unconsolidated_raw_diamonds(2, "worker-b", supplier=feed)
    with pytest.raises(ClaimsInProgress) as raised:
        await diamond_db.purge_raw_payloads(feed)
    assert raised.value.claims == (("worker-a", 3), ("worker-b", 2))
    assert "worker-a: 3, worker-b: 2" in str(raised.value)
    table = "raw_diamonds_nivoda" if feed == "nivoda" else "raw_diamonds_default"
    assert partitions(diamond_db_url)[table][feed] == 10
    assert await diamond_db.purge_raw_payloads(feed, force=True) == 10
    remaining = {s for counts in partitions(diamond_db_url).values() for s in counts}
    assert remaining == set(FEEDS) - {feed}


LOCK_WAITS = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass"


async def test_purge_waits_for_a_claim_in_flight_then_refuses(
    diamond_db: Database, diamond_db_url: str
) -> None:
    """A purge that starts while a claim's transaction is still open cannot miss it: it
    waits for that transaction (its partition lock), then sees the claim and refuses."""
    await diamond_db.upsert_raw_diamonds(uuid4(), rows(10, "rapnet"), supplier="rapnet")
    async with Database(diamond_db_url, min_size=2, max_size=4) as db:
        async with db.transaction() as tx:
            await tx.claim_unconsolidated_raw_diamonds(2, "racer", supplier="rapnet")
            purge = asyncio.create_task(db.purge_raw_payloads("rapnet"))
            for _ in range(1000):  # until the purge waits for the partition's lock
                if scalar(diamond_db_url, LOCK_WAITS, "raw_diamonds_default"):
                    break
                await asyncio.sleep(0.01)
            else:
                raise AssertionError("the purge never waited for the claim's transaction")
            assert not purge.done()
        with pytest.raises(ClaimsInProgress, match="racer: 2"):
            await purge
    assert scalar(diamond_db_url, "SELECT count(*) FROM raw_diamonds") == 10


# -- migration 0004 on a live raw table ---------------------------------------------------

OLD_UPSERT = (  # what code of before 0004 sends: the table by name, the per-table key
    "INSERT INTO raw_diamonds_nivoda (run_id, supplier_stone_id, offer_id, payload, payload_hash)"
    " VALUES (%s, %s, 'offer', '{}', repeat('a', 64))"
    " ON CONFLICT (supplier_stone_id) DO UPDATE SET offer_id = 'offer-2'"
)


async def test_0004_turns_a_live_raw_table_into_the_nivoda_partition(
    diamond_db_server: Server, diamond_db_url: str
) -> None:
    with diamond_db_server.database("diamond_db_0004", bootstrap=False) as url:
        await Database(url).migrate("0003")
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO raw_diamonds_nivoda"
                " (run_id, supplier_stone_id, offer_id, payload, payload_hash)"
                " SELECT gen_random_uuid(), 'old-' || n, 'o', jsonb_build_object('n', n),"
                " encode(sha256(convert_to(n::text, 'UTF8')), 'hex')"
                " FROM generate_series(1, 5000) AS n"
            )
            before = conn.execute("SELECT id, payload_hash FROM raw_diamonds_nivoda").fetchall()
        done = asyncio.Event()
        written: list[str] = []

        async def old_writer() -> None:  # keeps writing through the whole migration
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                while not done.is_set():
                    stone = f"live-{len(written)}"
                    await conn.execute(OLD_UPSERT, (uuid4(), stone))
                    written.append(stone)

        writer = asyncio.create_task(old_writer())
        await Database(url).migrate()
        done.set()
        await writer  # a failed write would raise here
        assert_same_catalog(catalog(diamond_db_url), catalog(url))
        after = fetch(
            url,
            "SELECT id, payload_hash FROM raw_diamonds WHERE supplier_stone_id LIKE 'old-%%'",
        )
        assert sorted(after) == sorted(before)
        live = fetch(url, "SELECT supplier_stone_id FROM raw_diamonds_nivoda WHERE offer_id <> 'o'")
        assert written
        assert {s for (s,) in live} == set(written)
        assert partitions(url) == {"raw_diamonds_nivoda": {"nivoda": 5000 + len(written)}}
        async with Database(url) as db:  # and the library works on it
            assert await db.get_unconsolidated_count() == 5000 + len(written)
        # A runner that died after the attach step re-runs the whole file: nothing changes.
        with psycopg.connect(url, autocommit=True) as conn:
            for step in next(m for m in load_migrations(SHIPPED) if m.version == "0004").steps():
                conn.execute(step.sql.encode())
        assert_same_catalog(catalog(diamond_db_url), catalog(url))


@pytest.mark.parametrize(
    ("feed", "partition"), [("nivoda", "raw_diamonds_nivoda"), ("rapnet", "raw_diamonds_default")]
)
def test_each_raw_statement_reads_only_its_feeds_partition(
    diamond_db_url: str, feed: str, partition: str
) -> None:
    """Partition pruning: the plan of every raw statement names one partition, its feed's."""
    registry = default_registry()
    params = {
        "supplier": feed,
        "row_limit": 10,
        "row_offset": 0,
        "claimed_by": "c",
        "ids": [uuid4()],
        "error": None,
        "older_than": timedelta(minutes=1),
        "run_id": None,
    }
    other = {"raw_diamonds_nivoda", "raw_diamonds_default"} - {partition}
    with psycopg.connect(diamond_db_url, autocommit=True) as conn:
        for name in (
            "get_unconsolidated_raw_diamonds",
            "get_unconsolidated_count",
            "claim_unconsolidated_raw_diamonds",
            "mark_as_consolidated",
            "mark_claimed_as_failed",
            "reset_stuck_claims",
            "reset_failed_raw_diamonds",
            "get_raw_claims",
            "delete_raw_payloads",
        ):
            plan = "\n".join(
                row[0] for row in conn.execute(f"EXPLAIN {registry[name].sql}".encode(), params)
            )
            assert partition in plan, (name, plan)
            assert not any(table in plan for table in other), (name, plan)

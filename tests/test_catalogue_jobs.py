"""Catalogue jobs against a Python oracle: crashes, races, leases, cancel, revert, retry."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from uuid import UUID

import psycopg
import pytest
from helpers import diamond, fetch, fetch_dicts, scalar

from diamond_db import (
    CatalogueJob,
    Database,
    DiamondInput,
    DiamondSearch,
    JobConflict,
    PricingRule,
    RatingRule,
)

SHAPES = ("ROUND", "OVAL", "PEAR")
COLORS = ("D", "E", "F", "G", "H")
CLARITIES = ("IF", "VS1", "VS2", "SI1")
SUPPLIERS = ("nivoda", "other")
GIRDLES = ("THIN", "MEDIUM", "THICK")
CARATS = tuple(Decimal(c) for c in ("0.50", "0.90", "1.00", "1.50", "2.00"))
PRICES = (50_000, 100_000, 250_000, 400_000)
PCTS = tuple(Decimal(p) for p in ("55.00", "57.50", "60.00", "62.00"))

# -- data -------------------------------------------------------------------------


def random_diamonds(rng: random.Random, count: int, prefix: str = "s") -> list[DiamondInput]:
    """Diamonds whose values often sit exactly on the rules' range ends."""
    stones = []
    for n in range(count):
        stones.append(
            diamond(
                f"{prefix}{n}",
                supplier=rng.choice(SUPPLIERS),
                shape=rng.choice(SHAPES),
                carats=rng.choice(CARATS),
                color=rng.choice(COLORS),
                clarity=rng.choice(CLARITIES),
                lab_grown=rng.random() < 0.3,
                supplier_price_cents=rng.choice(PRICES) + rng.randrange(0, 3),
                fancy_color=rng.choice((None, None, "YELLOW")),
                table_pct=rng.choice((None, *PCTS)),
                depth_pct=rng.choice(PCTS),
                girdle=rng.choice((None, *GIRDLES)),
                markup_ratio=Decimal("1.1500"),
                rating=5,
            )
        )
    return stones


def random_pricing_rule(rng: random.Random) -> dict[str, Any]:
    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.35 else None

    low, high = sorted(rng.sample(PRICES, 2))
    return {
        "priority": rng.randrange(0, 4),
        "markup_ratio": Decimal(rng.randrange(10_001, 30_000)) / 10_000,
        "rating": rng.randrange(1, 11),
        "shapes": maybe(rng.sample(SHAPES, 2)),
        "lab_grown": maybe(rng.random() < 0.5),
        "supplier": maybe(rng.choice(SUPPLIERS)),
        "carat_min": maybe(rng.choice(CARATS)),
        "price_min_cents": maybe(low),
        "price_max_cents": maybe(high),
        "fancy": maybe(rng.random() < 0.5),
    }


def random_rating_rule(rng: random.Random) -> dict[str, Any]:
    def maybe(value: Any) -> Any:
        return value if rng.random() < 0.35 else None

    low, high = sorted(rng.sample(PCTS, 2))
    return {
        "priority": rng.randrange(0, 4),
        "rating": rng.randrange(1, 11),
        "colors": maybe([c.lower() for c in rng.sample(COLORS, 2)]),  # case-insensitive
        "clarities": maybe(rng.sample(CLARITIES, 2)),
        "girdles": maybe(rng.sample(GIRDLES, 2)),
        "lab_grown": maybe(rng.random() < 0.5),
        "table_pct_min": maybe(low),
        "table_pct_max": maybe(high),
        "depth_pct_min": maybe(low),
    }


# -- the oracle -------------------------------------------------------------------


def _in(values: list[str] | None, value: str | None) -> bool:
    if values is None:
        return True
    return value is not None and value.upper() in values


def _within(low: Any, high: Any, value: Any) -> bool:
    if low is None and high is None:
        return True
    if value is None:
        return False
    return (low is None or low <= value) and (high is None or value <= high)


def prices(rule: PricingRule, d: dict[str, Any]) -> bool:
    return (
        _within(rule.carat_min, rule.carat_max, d["carats"])
        and (rule.shapes is None or d["shape"] in rule.shapes)
        and (rule.lab_grown is None or rule.lab_grown == d["lab_grown"])
        and (rule.supplier is None or rule.supplier == d["supplier"])
        and _within(rule.price_min_cents, rule.price_max_cents, d["supplier_price_cents"])
        and (rule.fancy is None or rule.fancy == (d["fancy_color"] is not None))
    )


def rates(rule: RatingRule, d: dict[str, Any]) -> bool:
    return (
        _in(rule.colors, d["color"])
        and _in(rule.clarities, d["clarity"])
        and _in(rule.girdles, d["girdle"])
        and (rule.lab_grown is None or rule.lab_grown == d["lab_grown"])
        and _within(rule.table_pct_min, rule.table_pct_max, d["table_pct"])
        and _within(rule.depth_pct_min, rule.depth_pct_max, d["depth_pct"])
    )


@dataclass(frozen=True)
class Oracle:
    pricing: list[PricingRule]
    rating: list[RatingRule]

    def values(self, kind: str, d: dict[str, Any]) -> tuple[Any, ...]:
        """(markup_ratio, retail_price_cents, pricing_rating, rating) after a job of `kind`."""
        markup, retail, pricing_rating = d["markup_ratio"], d["retail_price_cents"], None
        pricing_rating = d["pricing_rating"]
        if kind == "pricing":
            rule = next((r for r in self.pricing if prices(r, d)), None)
            markup = rule.markup_ratio if rule else None
            retail = None
            if rule is not None:
                exact = d["supplier_price_cents"] * rule.markup_ratio
                retail = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
            pricing_rating = rule.rating if rule else None
        rated = next((r.rating for r in self.rating if rates(r, d)), None)
        return markup, retail, pricing_rating, rated if rated is not None else pricing_rating


async def oracle(db: Database) -> Oracle:
    return Oracle(await db.get_active_pricing_rules(), await db.get_active_rating_rules())


def stored(url: str) -> dict[UUID, dict[str, Any]]:
    rows = fetch_dicts(url, "SELECT * FROM diamonds WHERE status = 'active'")
    return {row["id"]: row for row in rows}


def computed(row: dict[str, Any]) -> tuple[Any, ...]:
    return row["markup_ratio"], row["retail_price_cents"], row["pricing_rating"], row["rating"]


async def rules(db: Database, rng: random.Random, pricing: int = 6, rating: int = 5) -> None:
    for _ in range(pricing):
        await db.create_pricing_rule(**random_pricing_rule(rng))
    for _ in range(rating):
        await db.create_rating_rule(**random_rating_rule(rng))


def snapshot_count(url: str, job: CatalogueJob) -> int:
    return int(
        scalar(url, "SELECT count(*) FROM catalogue_job_snapshots WHERE job_id = %s", job.id)
    )


@asynccontextmanager
async def row_locked(url: str, diamond_id: UUID) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Hold a diamond's row lock on a connection of our own (the next batch waits for it)."""
    async with await psycopg.AsyncConnection.connect(url) as conn:
        await conn.execute(b"SELECT 1 FROM diamonds WHERE id = %s FOR UPDATE", (diamond_id,))
        yield conn
        await conn.rollback()


async def lock_waiters(url: str, text: str, count: int = 1) -> list[int]:
    """Backends waiting on a lock in a statement whose first kilobyte contains `text`."""
    sql = (
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
        " AND datname = current_database() AND position(%s in query) > 0"
    )
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for _ in range(2000):
            rows = await (await conn.execute(sql.encode(), (text,))).fetchall()
            if len(rows) >= count:
                return [int(row[0]) for row in rows]
            await asyncio.sleep(0.005)  # polls for a state the test itself waits for
    raise AssertionError(f"no backend waiting in {text!r}")


BATCH_STATEMENT = "j.kind = 'pricing' AS pricing"  # apply_catalogue_job_batch's first CTE


def nth_id(url: str, n: int) -> UUID:
    """The id of the n-th live diamond (0-based) in id order: where batch n // size falls."""
    sql = "SELECT id FROM diamonds WHERE status = 'active' ORDER BY id OFFSET %s LIMIT 1"
    return UUID(str(scalar(url, sql, n)))


@contextmanager
def failing_writes(url: str) -> Iterator[psycopg.Connection[Any]]:
    """A trigger that fails every diamond update while the flag table has a row."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            b"CREATE TABLE test_fail_flag (on_ BOOLEAN);"
            b" CREATE FUNCTION test_fail() RETURNS trigger LANGUAGE plpgsql AS $$"
            b" BEGIN IF EXISTS (SELECT 1 FROM test_fail_flag) THEN"
            b" RAISE EXCEPTION 'test: writes are failing'; END IF; RETURN NEW; END $$;"
            b" CREATE TRIGGER test_fail BEFORE UPDATE ON diamonds"
            b" FOR EACH ROW EXECUTE FUNCTION test_fail()"
        )
        try:
            yield conn
        finally:
            conn.execute(
                b"DROP TRIGGER test_fail ON diamonds; DROP FUNCTION test_fail();"
                b" DROP TABLE test_fail_flag"
            )


# -- the oracle tests ----------------------------------------------------------------


async def test_a_pricing_job_prices_like_the_oracle_and_a_second_run_writes_nothing(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(18)
    await diamond_db.upsert_diamonds(random_diamonds(rng, 600))
    await rules(diamond_db, rng)
    before = stored(diamond_db_url)
    expected = await oracle(diamond_db)

    job = await diamond_db.start_catalogue_job("pricing", reason="markups changed")
    assert (job.status, job.total, job.phase) == ("pending", 600, "run")
    seen: list[int] = []
    done = await diamond_db.run_catalogue_job(
        job.id, worker_id="w1", batch_size=128, on_progress=lambda j: seen.append(j.processed)
    )

    after = stored(diamond_db_url)
    want = {i: expected.values("pricing", row) for i, row in before.items()}
    assert {i: computed(row) for i, row in after.items()} == want
    changed = sum(1 for i in before if computed(before[i]) != want[i])
    assert (done.status, done.processed, done.changed) == ("completed", 600, changed)
    assert done.lease_holder is None
    assert done.finished_at is not None
    assert seen == [128, 256, 384, 512, 600]
    assert snapshot_count(diamond_db_url, done) == changed
    touched = {before[i]["supplier"] for i in before if computed(before[i]) != want[i]}
    assert done.suppliers == sorted(touched)
    versions = await diamond_db.get_dataset_versions()
    assert versions == dict.fromkeys(touched, 1)  # bumped once, when the job completed

    again = await diamond_db.start_catalogue_job("pricing", reason="nothing changed")
    versions_sql = "SELECT id, xmin::text, xmax::text FROM diamonds"
    tuples = fetch(diamond_db_url, versions_sql)
    wal = scalar(diamond_db_url, "SELECT pg_current_wal_lsn()")
    second = await diamond_db.run_catalogue_job(again.id, worker_id="w1", batch_size=128)
    assert (second.status, second.processed, second.changed) == ("completed", 600, 0)
    assert stored(diamond_db_url) == after  # not one diamond written (updated_at included)
    assert fetch(diamond_db_url, versions_sql) == tuples  # nor locked (xmax)
    assert snapshot_count(diamond_db_url, second) == 0
    assert await diamond_db.get_dataset_versions() == versions  # nothing changed: no bump
    assert (
        scalar(diamond_db_url, "SELECT pg_current_wal_lsn() - %s::pg_lsn", wal) < 200_000
    )  # job rows only (and hint bits)


async def test_a_filtered_rating_job_resumed_by_another_worker_keeps_its_filter(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(7)
    await diamond_db.upsert_diamonds(random_diamonds(rng, 400))
    await rules(diamond_db, rng, pricing=0, rating=6)
    before = stored(diamond_db_url)
    expected = await oracle(diamond_db)
    filters = {"shape": ["ROUND", "OVAL"], "carat_min": "0.9", "lab_grown": False}
    job = await diamond_db.start_catalogue_job("rating", reason="new grading", filters=filters)
    assert job.filters == {"shape": ["ROUND", "OVAL"], "carat_min": "0.9", "lab_grown": False}

    class Stop(Exception):
        pass

    def stop(_: CatalogueJob) -> None:
        raise Stop

    with pytest.raises(Stop):  # the first worker stops after one batch, lease released
        await diamond_db.run_catalogue_job(job.id, worker_id="a", batch_size=50, on_progress=stop)
    halfway = await diamond_db.get_catalogue_job(job.id)
    assert halfway is not None
    assert (halfway.status, halfway.processed, halfway.lease_holder) == ("running", 50, None)
    done = await diamond_db.run_catalogue_job(job.id, worker_id="b", batch_size=50)

    def selected(row: dict[str, Any]) -> bool:
        return (
            row["shape"] in ("ROUND", "OVAL")
            and row["carats"] >= Decimal("0.9")
            and not row["lab_grown"]
        )

    after = stored(diamond_db_url)
    for i, row in before.items():
        want = expected.values("rating", row) if selected(row) else computed(row)
        assert computed(after[i]) == want, row
    assert done.processed == sum(1 for row in before.values() if selected(row))
    assert done.status == "completed"


# -- crashes, races, leases ------------------------------------------------------------


async def test_a_backend_killed_mid_batch_loses_that_batch_only_and_another_worker_resumes(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(3)
    await diamond_db.upsert_diamonds(random_diamonds(rng, 300))
    await rules(diamond_db, rng)
    before = stored(diamond_db_url)
    expected = await oracle(diamond_db)
    job = await diamond_db.start_catalogue_job("pricing", reason="crash test")

    async with row_locked(diamond_db_url, nth_id(diamond_db_url, 150)):
        worker = asyncio.create_task(
            diamond_db.run_catalogue_job(job.id, worker_id="doomed", batch_size=100)
        )
        [pid] = await lock_waiters(diamond_db_url, BATCH_STATEMENT)
        fetch(diamond_db_url, "SELECT pg_terminate_backend(%s)", pid)
        with pytest.raises(psycopg.OperationalError):
            await worker
    crashed = await diamond_db.get_catalogue_job(job.id)
    assert crashed is not None
    assert (crashed.status, crashed.processed, crashed.lease_holder) == ("running", 100, None)

    done = await diamond_db.run_catalogue_job(job.id, worker_id="rescuer", batch_size=100)
    after = stored(diamond_db_url)
    assert {i: computed(r) for i, r in after.items()} == {
        i: expected.values("pricing", r) for i, r in before.items()
    }
    changed = sum(1 for i, r in before.items() if computed(r) != computed(after[i]))
    assert (done.status, done.processed, done.changed) == ("completed", 300, changed)
    assert snapshot_count(diamond_db_url, done) == changed  # every changed diamond, once
    olds = fetch(
        diamond_db_url,
        "SELECT diamond_id, old_retail_price_cents FROM catalogue_job_snapshots WHERE job_id = %s",
        job.id,
    )
    assert all(before[i]["retail_price_cents"] == old for i, old in olds)


async def test_a_diamond_written_while_its_batch_waits_is_priced_from_the_new_version(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(13)
    await diamond_db.upsert_diamonds(random_diamonds(rng, 200))
    await rules(diamond_db, rng)
    expected = await oracle(diamond_db)
    target = nth_id(diamond_db_url, 120)  # in the second batch of 100
    job = await diamond_db.start_catalogue_job("pricing", reason="race with a writer")
    async with await psycopg.AsyncConnection.connect(diamond_db_url) as writer:
        await writer.execute(
            b"UPDATE diamonds SET supplier_price_cents = supplier_price_cents * 3 + 7,"
            b" markup_ratio = 1.3000, retail_price_cents = 1 WHERE id = %s",
            (target,),
        )
        worker = asyncio.create_task(
            diamond_db.run_catalogue_job(job.id, worker_id="w", batch_size=100)
        )
        await lock_waiters(diamond_db_url, BATCH_STATEMENT)  # the batch read the old version
        await writer.commit()
    done = await worker
    after = stored(diamond_db_url)
    assert {i: computed(r) for i, r in after.items()} == {
        i: expected.values("pricing", r) for i, r in after.items()
    }  # the target too: priced from the price the writer committed, not the one first read
    assert (done.status, done.processed) == ("completed", 200)
    assert snapshot_count(diamond_db_url, done) == done.changed
    [old] = fetch(
        diamond_db_url,
        "SELECT old_markup_ratio, old_retail_price_cents FROM catalogue_job_snapshots"
        " WHERE job_id = %s AND diamond_id = %s",
        job.id,
        target,
    )
    assert old == (Decimal("1.3000"), 1)  # the snapshot holds the writer's values


async def test_two_workers_racing_on_one_job_give_one_workers_result(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(5)
    await diamond_db.upsert_diamonds(random_diamonds(rng, 300))
    await rules(diamond_db, rng)
    before = stored(diamond_db_url)
    expected = await oracle(diamond_db)
    job = await diamond_db.start_catalogue_job("pricing", reason="race")
    first, second = await asyncio.gather(
        diamond_db.run_catalogue_job(job.id, worker_id="a", batch_size=40),
        diamond_db.run_catalogue_job(job.id, worker_id="b", batch_size=40),
    )
    assert "completed" in (first.status, second.status)  # one worked it, the other left
    done = await diamond_db.get_catalogue_job(job.id)
    assert done is not None
    changed = sum(1 for r in before.values() if computed(r) != expected.values("pricing", r))
    assert (done.status, done.processed, done.changed) == ("completed", 300, changed)
    assert snapshot_count(diamond_db_url, done) == changed
    assert {i: computed(r) for i, r in stored(diamond_db_url).items()} == {
        i: expected.values("pricing", r) for i, r in before.items()
    }


async def test_an_expired_lease_is_taken_over_and_the_stalled_worker_writes_nothing_more(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(9)
    await diamond_db.upsert_diamonds(random_diamonds(rng, 200))
    await rules(diamond_db, rng)
    job = await diamond_db.start_catalogue_job("pricing", reason="stall")
    stalled: list[CatalogueJob] = []
    taken_over: list[CatalogueJob] = []

    async def stall_then_take_over(progress: CatalogueJob) -> None:
        if taken_over:
            return
        fetch(  # worker a stalls past its lease
            diamond_db_url,
            "UPDATE catalogue_jobs SET lease_expires_at = now() - interval '1 s'"
            " WHERE id = %s RETURNING id",
            job.id,
        )
        stalled.extend(await diamond_db.get_stalled_catalogue_jobs())
        taken_over.append(await diamond_db.run_catalogue_job(job.id, worker_id="b", batch_size=50))

    last = await diamond_db.run_catalogue_job(
        job.id, worker_id="a", batch_size=50, on_progress=stall_then_take_over
    )
    assert [j.id for j in stalled] == [job.id]
    [done] = taken_over
    assert (done.status, done.processed) == ("completed", 200)
    assert last == done  # worker a stopped at its next batch, without writing
    assert snapshot_count(diamond_db_url, done) == done.changed


async def test_a_cancel_racing_a_batch_ends_cancelled_never_completed(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(11)
    await diamond_db.upsert_diamonds(random_diamonds(rng, 200))
    await rules(diamond_db, rng)
    job = await diamond_db.start_catalogue_job("pricing", reason="cancel")
    async with row_locked(diamond_db_url, nth_id(diamond_db_url, 199)):  # the last batch
        worker = asyncio.create_task(
            diamond_db.run_catalogue_job(job.id, worker_id="w", batch_size=100)
        )
        await lock_waiters(diamond_db_url, BATCH_STATEMENT)
        cancel = asyncio.create_task(diamond_db.cancel_catalogue_job(job.id))
        await lock_waiters(diamond_db_url, "cancelling", count=1)  # waits for the batch
    cancelling, done = await asyncio.gather(cancel, worker)
    assert cancelling.status == "cancelling"
    assert (done.status, done.processed) == ("cancelled", 200)  # the batch finished first
    assert done.finished_at is not None
    assert done.lease_holder is None
    assert snapshot_count(diamond_db_url, done) == done.changed


async def test_cancel_a_pending_job_and_refuse_to_cancel_a_finished_one(
    diamond_db: Database,
) -> None:
    job = await diamond_db.start_catalogue_job("rating", reason="oops")
    cancelled = await diamond_db.cancel_catalogue_job(job.id)
    assert cancelled.status == "cancelled"
    with pytest.raises(JobConflict):
        await diamond_db.cancel_catalogue_job(job.id)
    ran = await diamond_db.run_catalogue_job(job.id, worker_id="w")
    assert ran.status == "cancelled"  # nothing to work


async def test_twenty_concurrent_starts_make_one_job(
    diamond_db: Database, diamond_db_url: str
) -> None:
    async with Database(diamond_db_url, min_size=1, max_size=20) as db:
        results = await asyncio.gather(
            *(db.start_catalogue_job("pricing", reason=f"start {n}") for n in range(20)),
            return_exceptions=True,
        )
    jobs = [r for r in results if isinstance(r, CatalogueJob)]
    assert len(jobs) == 1
    assert all(isinstance(r, JobConflict) for r in results if r not in jobs)
    assert scalar(diamond_db_url, "SELECT count(*) FROM catalogue_jobs WHERE kind = 'pricing'") == 1


# -- revert and retry ------------------------------------------------------------------


async def test_revert_restores_old_values_but_skips_diamonds_changed_since(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(13)
    await diamond_db.upsert_diamonds(random_diamonds(rng, 250))
    await diamond_db.create_pricing_rule(priority=1, markup_ratio=Decimal("2.0000"), rating=9)
    before = stored(diamond_db_url)
    job = await diamond_db.start_catalogue_job("pricing", reason="double everything")
    done = await diamond_db.run_catalogue_job(job.id, worker_id="w", batch_size=60)
    assert done.changed == 250
    later = list(before)[:7]  # a later consolidation changes these
    fetch(
        diamond_db_url,
        "UPDATE diamonds SET retail_price_cents = 1 WHERE id = ANY(%s) RETURNING id",
        later,
    )
    reverted = await diamond_db.revert_catalogue_job(job.id, worker_id="w", batch_size=60)
    assert (reverted.status, reverted.phase, reverted.restored, reverted.skipped) == (
        "reverted",
        "revert",
        243,
        7,
    )
    assert reverted.reverted_at is not None
    assert set((await diamond_db.get_dataset_versions()).values()) == {2}  # run, then revert
    after = stored(diamond_db_url)
    for i, row in before.items():
        if i in later:
            assert after[i]["retail_price_cents"] == 1
        else:
            assert computed(after[i]) == computed(row)
    with pytest.raises(JobConflict):
        await diamond_db.revert_catalogue_job(job.id, worker_id="w")


async def test_retry_is_bounded_and_a_failed_revert_resumes_as_a_revert(
    diamond_db: Database, diamond_db_url: str
) -> None:
    rng = random.Random(17)
    await diamond_db.upsert_diamonds(random_diamonds(rng, 100))
    await diamond_db.create_pricing_rule(priority=1, markup_ratio=Decimal("1.5000"), rating=2)
    before = stored(diamond_db_url)
    with failing_writes(diamond_db_url) as flag:
        job = await diamond_db.start_catalogue_job("pricing", reason="retry")
        flag.execute(b"INSERT INTO test_fail_flag VALUES (TRUE)")
        for attempt in range(3):
            with pytest.raises(psycopg.errors.RaiseException):
                await diamond_db.run_catalogue_job(job.id, worker_id="w", batch_size=40)
            failed = await diamond_db.get_catalogue_job(job.id)
            assert failed is not None
            assert (failed.status, failed.retry_count) == ("failed", attempt)
            assert failed.error is not None
            assert "writes are failing" in failed.error
            if attempt < 2:
                retried = await diamond_db.retry_catalogue_job(job.id, max_retries=2)
                assert (retried.status, retried.retry_count) == ("pending", attempt + 1)
        with pytest.raises(JobConflict):
            await diamond_db.retry_catalogue_job(job.id, max_retries=2)
        flag.execute(b"DELETE FROM test_fail_flag")
        await diamond_db.retry_catalogue_job(job.id, max_retries=3)
        done = await diamond_db.run_catalogue_job(job.id, worker_id="w", batch_size=40)
        assert (done.status, done.changed, done.retry_count) == ("completed", 100, 3)

        flag.execute(b"INSERT INTO test_fail_flag VALUES (TRUE)")
        with pytest.raises(psycopg.errors.RaiseException):
            await diamond_db.revert_catalogue_job(job.id, worker_id="w", batch_size=40)
        flag.execute(b"DELETE FROM test_fail_flag")
        failed = await diamond_db.get_catalogue_job(job.id)
        assert failed is not None
        assert (failed.status, failed.phase) == ("failed", "revert")
        await diamond_db.retry_catalogue_job(job.id, max_retries=5)
        reverted = await diamond_db.run_catalogue_job(job.id, worker_id="w", batch_size=40)
    assert (reverted.status, reverted.restored) == ("reverted", 100)
    assert {i: computed(r) for i, r in stored(diamond_db_url).items()} == {
        i: computed(r) for i, r in before.items()
    }


async def test_a_job_filter_is_validated_before_anything_is_stored(diamond_db: Database) -> None:
    with pytest.raises(ValueError, match=r"filters\.sort_by"):
        await diamond_db.start_catalogue_job("pricing", reason="x", filters={"sort_by": "rating"})
    with pytest.raises(ValueError, match="kind"):
        await diamond_db.start_catalogue_job("markup", reason="x")  # type: ignore[arg-type]
    search = DiamondSearch(colors=["D", "E"], price_max=100)
    job = await diamond_db.start_catalogue_job("rating", reason="x", filters=search)
    assert job.filters == {"colors": ["D", "E"], "price_max": 100}
    assert [j.id for j in await diamond_db.list_catalogue_jobs(kind="rating")] == [job.id]
    assert await diamond_db.list_catalogue_jobs(kind="pricing") == []


# -- apply_rules -------------------------------------------------------------------------


async def test_apply_rules_prices_and_rates_like_per_stone_matching(diamond_db: Database) -> None:
    rng = random.Random(21)
    await rules(diamond_db, rng)
    stones = random_diamonds(rng, 150)
    await diamond_db.upsert_diamonds(stones, apply_rules=True)
    for stone in stones:
        row = await diamond_db.get_diamond_by_offer_id(stone.offer_id)
        assert row is not None
        pricing = await diamond_db.match_pricing_rule(
            stone.carats,
            stone.shape,
            stone.lab_grown,
            stone.supplier,
            stone.supplier_price_cents,
            stone.fancy_color is not None,
        )
        rating = await diamond_db.match_rating_rule(
            supplier=stone.supplier,
            color=stone.color,
            clarity=stone.clarity,
            girdle=stone.girdle,
            lab_grown=stone.lab_grown,
            table_pct=stone.table_pct,
            depth_pct=stone.depth_pct,
            shape=stone.shape,
            carats=stone.carats,
            supplier_price_cents=stone.supplier_price_cents,
            certificate_lab=stone.certificate_lab,
        )
        markup = pricing.markup_ratio if pricing else None
        retail = None
        if pricing is not None:
            exact = stone.supplier_price_cents * pricing.markup_ratio
            retail = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
        pricing_rating = pricing.rating if pricing else None
        rated = rating.rating if rating else pricing_rating
        assert (row.markup_ratio, row.retail_price_cents, row.pricing_rating, row.rating) == (
            markup,
            retail,
            pricing_rating,
            rated,
        )
    plain = replace(stones[0], markup_ratio=Decimal("3.0000"), retail_price_cents=7, rating=1)
    await diamond_db.upsert_diamonds([plain])  # apply_rules=False keeps today's behaviour
    row = await diamond_db.get_diamond_by_offer_id(plain.offer_id)
    assert row is not None
    assert (row.markup_ratio, row.retail_price_cents, row.rating) == (Decimal("3.0000"), 7, 1)

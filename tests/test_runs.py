"""Batch runs and worker runs: atomic counters, completion, uniqueness and failed-worker resets."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from helpers import fetch_dicts

from diamond_db import Database, NotFoundError, RunMetadata, ValidationError, WorkerCounters


def run_row(url: str, run_id: UUID) -> dict[str, Any]:
    [row] = fetch_dicts(url, "SELECT * FROM run_metadata WHERE run_id = %s", run_id)
    return row


def worker_statuses(url: str, run_id: UUID) -> dict[str, str]:
    rows = fetch_dicts(
        url, "SELECT partition_id, status FROM worker_runs WHERE run_id = %s", run_id
    )
    return {r["partition_id"]: r["status"] for r in rows}


async def failed_run(db: Database, partitions: int, failed: int) -> RunMetadata:
    """A run whose first `failed` partitions failed (rows and counter), the rest completed."""
    run = await db.create_run_metadata("full", partitions)
    for p in range(partitions):
        worker = await db.create_worker_run(run.run_id, f"p{p}", uuid4(), {"page": p})
        if p < failed:
            await db.update_worker_run(worker.id, "failed", 3, "supplier timeout")
            await db.increment_failed_workers(run.run_id)
        else:
            await db.update_worker_run(worker.id, "completed", 10)
            await db.increment_completed_workers(run.run_id)
    return run


# -- run metadata ---------------------------------------------------------------


async def test_increments_return_the_counters_right_after(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("incremental", 3)
    assert await diamond_db.increment_completed_workers(run.run_id) == WorkerCounters(
        completed_workers=1, expected_workers=3, failed_workers=0
    )
    assert await diamond_db.increment_failed_workers(str(run.run_id)) == WorkerCounters(
        completed_workers=1, expected_workers=3, failed_workers=1
    )
    stored = run_row(diamond_db_url, run.run_id)
    assert (stored["completed_workers"], stored["failed_workers"]) == (1, 1)


async def test_increments_of_an_unknown_run_raise_not_found(diamond_db: Database) -> None:
    for increment in (diamond_db.increment_completed_workers, diamond_db.increment_failed_workers):
        with pytest.raises(NotFoundError) as caught:
            await increment(uuid4())
        assert isinstance(caught.value, LookupError)
    with pytest.raises(ValidationError):
        await diamond_db.increment_completed_workers("not-a-uuid")


async def test_200_concurrent_increments_each_see_a_distinct_count(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 200)
    async with Database(diamond_db_url, max_size=25) as db:
        results = await asyncio.gather(
            *(db.increment_completed_workers(run.run_id) for _ in range(200))
        )
    assert sorted(r.completed_workers for r in results) == list(range(1, 201))
    assert run_row(diamond_db_url, run.run_id)["completed_workers"] == 200


async def test_exactly_one_concurrent_worker_learns_it_was_the_last(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 60)
    async with Database(diamond_db_url, max_size=25) as db:
        results = await asyncio.gather(
            *(
                db.increment_failed_workers(run.run_id)
                if n % 3 == 0
                else db.increment_completed_workers(run.run_id)
                for n in range(60)
            )
        )
    last = [r for r in results if r.completed_workers + r.failed_workers == r.expected_workers]
    assert len(last) == 1
    stored = run_row(diamond_db_url, run.run_id)
    assert (stored["completed_workers"], stored["failed_workers"]) == (40, 20)


async def test_complete_run_records_completion_and_the_watermark(
    diamond_db: Database, diamond_db_url: str
) -> None:
    before = datetime(2024, 1, 1, tzinfo=UTC)
    after = datetime(2024, 1, 2, 6, tzinfo=UTC)
    run = await diamond_db.create_run_metadata("incremental", 1, before)
    completed = await diamond_db.complete_run(run.run_id, after)
    assert completed.completed_at is not None
    assert (completed.watermark_before, completed.watermark_after) == (before, after)
    assert await diamond_db.get_run_metadata(run.run_id) == completed
    stored = run_row(diamond_db_url, run.run_id)
    assert (stored["completed_at"], stored["watermark_after"]) == (completed.completed_at, after)
    with pytest.raises(NotFoundError):
        await diamond_db.complete_run(uuid4())


# -- worker runs ----------------------------------------------------------------


async def test_create_worker_run_starts_running_with_its_work_item(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 2)
    worker_id = uuid4()
    item = {"offset": 0, "limit": 5000, "filters": {"shape": ["ROUND"]}}
    worker = await diamond_db.create_worker_run(run.run_id, "p0", str(worker_id), item)
    assert (worker.run_id, worker.partition_id, worker.worker_id) == (run.run_id, "p0", worker_id)
    assert (worker.status, worker.records_processed, worker.completed_at) == ("running", 0, None)
    bare = await diamond_db.create_worker_run(run.run_id, "p1", uuid4())
    [stored] = fetch_dicts(diamond_db_url, "SELECT * FROM worker_runs WHERE id = %s", worker.id)
    assert stored["work_item_payload"] == item == worker.work_item_payload
    assert bare.work_item_payload is None


async def test_a_second_worker_for_the_same_partition_gets_a_unique_violation(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 2)
    other = await diamond_db.create_run_metadata("full", 2)
    first = await diamond_db.create_worker_run(run.run_id, "p0", uuid4())
    with pytest.raises(psycopg.errors.UniqueViolation) as caught:
        await diamond_db.create_worker_run(run.run_id, "p0", uuid4())
    assert caught.value.sqlstate == "23505"
    await diamond_db.create_worker_run(other.run_id, "p0", uuid4())  # another run: fine
    rows = fetch_dicts(diamond_db_url, "SELECT id FROM worker_runs WHERE run_id = %s", run.run_id)
    assert rows == [{"id": first.id}]


async def test_concurrent_workers_racing_for_one_partition_one_wins(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 1)
    async with Database(diamond_db_url, max_size=10) as db:
        outcomes = await asyncio.gather(
            *(db.create_worker_run(run.run_id, "p0", uuid4()) for _ in range(10)),
            return_exceptions=True,
        )
    assert sum(not isinstance(o, BaseException) for o in outcomes) == 1
    assert all(
        isinstance(o, psycopg.errors.UniqueViolation) for o in outcomes if isinstance(o, Exception)
    )


async def test_update_worker_run_records_the_outcome(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 1)
    worker = await diamond_db.create_worker_run(run.run_id, "p0", uuid4())
    progress = await diamond_db.update_worker_run(worker.id, "running", 500)
    assert (progress.status, progress.records_processed, progress.completed_at) == (
        "running",
        500,
        None,
    )
    done = await diamond_db.update_worker_run(str(worker.id), "failed", 700, "HTTP 503")
    assert (done.status, done.records_processed, done.error_message) == ("failed", 700, "HTTP 503")
    assert done.completed_at is not None
    [stored] = fetch_dicts(diamond_db_url, "SELECT * FROM worker_runs WHERE id = %s", worker.id)
    assert (stored["status"], stored["completed_at"]) == ("failed", done.completed_at)
    with pytest.raises(NotFoundError):
        await diamond_db.update_worker_run(uuid4(), "completed", 1)
    with pytest.raises(ValidationError):
        await diamond_db.update_worker_run(worker.id, "done", 1)  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        await diamond_db.update_worker_run(worker.id, "completed", -1)


async def test_worker_run_reads_by_run_and_failed_ones_with_their_payload(
    diamond_db: Database,
) -> None:
    run = await failed_run(diamond_db, partitions=4, failed=2)
    await failed_run(diamond_db, partitions=2, failed=2)  # another run's failures
    everything = await diamond_db.get_worker_runs_by_run_id(run.run_id)
    assert [w.partition_id for w in everything] == ["p0", "p1", "p2", "p3"]
    failed = await diamond_db.get_failed_worker_runs(str(run.run_id))
    assert [(w.partition_id, w.work_item_payload) for w in failed] == [
        ("p0", {"page": 0}),
        ("p1", {"page": 1}),
    ]
    assert {w.error_message for w in failed} == {"supplier timeout"}


# -- resetting failed workers -----------------------------------------------------


async def test_reset_failed_worker_deletes_the_row_and_corrects_the_counter(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await failed_run(diamond_db, partitions=4, failed=2)
    assert await diamond_db.reset_failed_worker(run.run_id, "p0") is True
    assert run_row(diamond_db_url, run.run_id)["failed_workers"] == 1
    assert worker_statuses(diamond_db_url, run.run_id) == {
        "p1": "failed",
        "p2": "completed",
        "p3": "completed",
    }
    # Not failed, or already reset: nothing happens.
    assert await diamond_db.reset_failed_worker(run.run_id, "p2") is False
    assert await diamond_db.reset_failed_worker(run.run_id, "p0") is False
    assert run_row(diamond_db_url, run.run_id)["failed_workers"] == 1
    # The partition can be retried; the retry completing makes it the last worker.
    retry = await diamond_db.create_worker_run(run.run_id, "p0", uuid4(), {"page": 0})
    await diamond_db.update_worker_run(retry.id, "completed", 10)
    counters = await diamond_db.increment_completed_workers(run.run_id)
    assert (counters.completed_workers, counters.failed_workers) == (3, 1)


async def test_reset_all_failed_workers(diamond_db: Database, diamond_db_url: str) -> None:
    run = await failed_run(diamond_db, partitions=5, failed=3)
    other = await failed_run(diamond_db, partitions=2, failed=1)
    assert await diamond_db.reset_all_failed_workers(run.run_id) == 3
    assert run_row(diamond_db_url, run.run_id)["failed_workers"] == 0
    assert set(worker_statuses(diamond_db_url, run.run_id).values()) == {"completed"}
    assert await diamond_db.reset_all_failed_workers(run.run_id) == 0
    assert await diamond_db.reset_all_failed_workers(uuid4()) == 0
    assert run_row(diamond_db_url, other.run_id)["failed_workers"] == 1  # untouched
    assert len(await diamond_db.get_failed_worker_runs(other.run_id)) == 1


async def test_reset_never_takes_the_counter_below_zero(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 2)
    for p in ("p0", "p1"):  # failed rows whose workers died before counting themselves
        worker = await diamond_db.create_worker_run(run.run_id, p, uuid4())
        await diamond_db.update_worker_run(worker.id, "failed", 0)
    await diamond_db.increment_failed_workers(run.run_id)
    assert await diamond_db.reset_all_failed_workers(run.run_id) == 2
    assert run_row(diamond_db_url, run.run_id)["failed_workers"] == 0


async def wait_until_blocked_by(conn: psycopg.AsyncConnection[Any], blocker: int) -> int:
    """The pid of the backend waiting for a lock `blocker` holds (polled, no sleeping)."""
    while True:
        cursor = await conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (blocker,)
        )
        row = await cursor.fetchone()
        if row is not None:
            return int(row[0])


@pytest.mark.parametrize("partition", [None, "p1"])
async def test_a_reset_killed_midway_leaves_rows_and_counter_agreeing(
    diamond_db: Database, diamond_db_url: str, partition: str | None
) -> None:
    run = await failed_run(diamond_db, partitions=4, failed=3)
    before_rows = worker_statuses(diamond_db_url, run.run_id)

    async with (
        await psycopg.AsyncConnection.connect(diamond_db_url) as blocker,
        await psycopg.AsyncConnection.connect(diamond_db_url, autocommit=True) as watcher,
    ):
        # Hold the run's row: the reset deletes its worker rows, then waits for this lock.
        await blocker.execute(
            "SELECT 1 FROM run_metadata WHERE run_id = %s FOR UPDATE", (run.run_id,)
        )
        reset = asyncio.create_task(
            diamond_db.reset_all_failed_workers(run.run_id)
            if partition is None
            else diamond_db.reset_failed_worker(run.run_id, partition)
        )
        victim = await wait_until_blocked_by(watcher, blocker.info.backend_pid)
        # Its DELETE has run: the failed rows are locked by the half-done statement.
        with pytest.raises(psycopg.errors.LockNotAvailable):
            await watcher.execute(
                "SELECT 1 FROM worker_runs WHERE run_id = %s AND status = 'failed'"
                " FOR UPDATE NOWAIT",
                (run.run_id,),
            )
        await watcher.execute("SELECT pg_terminate_backend(%s)", (victim,))
        with pytest.raises(psycopg.OperationalError):
            await reset
        await blocker.rollback()

    assert worker_statuses(diamond_db_url, run.run_id) == before_rows
    assert run_row(diamond_db_url, run.run_id)["failed_workers"] == 3
    # The pool discards the killed connection; the reset then succeeds whole.
    expected = 3 if partition is None else True
    if partition is None:
        assert await diamond_db.reset_all_failed_workers(run.run_id) == expected
    else:
        assert await diamond_db.reset_failed_worker(run.run_id, partition) is expected
    failed_rows = sum(s == "failed" for s in worker_statuses(diamond_db_url, run.run_id).values())
    assert run_row(diamond_db_url, run.run_id)["failed_workers"] == failed_rows

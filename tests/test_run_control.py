"""Run control, the run status definition and dataset versions."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID, uuid4

import pytest
from helpers import fetch, fetch_dicts, scalar

from diamond_db import (
    Database,
    DiamondDBError,
    NotFoundError,
    RawDiamondInput,
    RunStateError,
    ValidationError,
)


async def run_with_partitions(db: Database, partitions: int, supplier: str = "nivoda") -> UUID:
    run = await db.create_run_metadata("full", partitions, supplier=supplier)
    for n in range(partitions):
        await db.init_partition(run.run_id, f"p{n}")
        await db.create_worker_run(run.run_id, f"p{n}", uuid4())
    return run.run_id


async def status(db: Database, run_id: UUID, stalled_after: timedelta | None = None) -> str:
    details = await db.get_run_details(run_id, stalled_after=stalled_after or timedelta(hours=1))
    assert details is not None
    return details.status


def age_run(url: str, run_id: UUID) -> None:
    """Make every trace of the run's activity an hour old."""
    fetch(
        url,
        "WITH r AS (UPDATE run_metadata SET started_at = started_at - interval '1 hour'"
        " WHERE run_id = %s RETURNING 1),"
        " p AS (UPDATE partition_progress SET updated_at = updated_at - interval '1 hour'"
        " WHERE run_id = %s RETURNING 1),"
        " w AS (UPDATE worker_runs SET started_at = started_at - interval '1 hour',"
        " updated_at = updated_at - interval '1 hour' WHERE run_id = %s RETURNING 1)"
        " SELECT 1",
        run_id,
        run_id,
        run_id,
    )


# -- the run status -------------------------------------------------------------


async def test_run_status_follows_the_documented_definition(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run_id = await run_with_partitions(diamond_db, 2)
    assert await status(diamond_db, run_id) == "running"
    age_run(diamond_db_url, run_id)
    assert await status(diamond_db, run_id, timedelta(minutes=15)) == "stalled"
    assert await status(diamond_db, run_id, timedelta(hours=2)) == "running"
    await diamond_db.complete_partition(run_id, "p0", 0)
    await diamond_db.fail_partition(run_id, "p1", "supplier 500")
    assert await status(diamond_db, run_id) == "running"  # consolidation not finished
    await diamond_db.mark_consolidation_started(run_id)
    await diamond_db.finish_consolidation(run_id)
    assert await status(diamond_db, run_id) == "partial"
    assert await diamond_db.retry_partition(run_id, "p1")
    assert await diamond_db.complete_partition(run_id, "p1", 0)
    assert await status(diamond_db, run_id) == "completed"

    failed = await run_with_partitions(diamond_db, 2)
    for partition in ("p0", "p1"):
        await diamond_db.fail_partition(failed, partition, "bad credentials")
    assert await status(diamond_db, failed) == "failed"  # all done, none completed

    legacy = await diamond_db.create_run_metadata("full", 2)  # no partitions: the counters
    await diamond_db.increment_completed_workers(legacy.run_id)
    assert await status(diamond_db, legacy.run_id) == "running"
    await diamond_db.increment_failed_workers(legacy.run_id)
    await diamond_db.complete_run(legacy.run_id)
    details = await diamond_db.get_run_details(legacy.run_id)
    assert details is not None
    assert (details.status, details.workers_completed, details.workers_failed) == ("partial", 1, 1)
    with pytest.raises(ValidationError):
        await diamond_db.get_run_details(legacy.run_id, stalled_after=timedelta(seconds=-1))


# -- cancel and delete -----------------------------------------------------------


async def test_cancel_run_fails_what_is_in_progress_once(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run_id = await run_with_partitions(diamond_db, 3)
    await diamond_db.complete_partition(run_id, "p0", 0)
    [done] = [
        w for w in await diamond_db.get_worker_runs_by_run_id(run_id) if w.partition_id == "p0"
    ]
    await diamond_db.update_worker_run(done.id, "completed", 0)
    cancelled = await diamond_db.cancel_run(run_id, "operator: duplicate run")
    assert (cancelled.partitions_failed, cancelled.worker_runs_failed) == (2, 2)
    assert cancelled.cancelled_at is not None
    again = await diamond_db.cancel_run(str(run_id), "second click")
    assert (again.partitions_failed, again.worker_runs_failed) == (0, 0)
    assert again.cancelled_at == cancelled.cancelled_at
    run = fetch_dicts(diamond_db_url, "SELECT * FROM run_metadata WHERE run_id = %s", run_id)[0]
    assert run["cancel_reason"] == "operator: duplicate run"
    assert run["completed_at"] is not None
    workers = fetch(
        diamond_db_url,
        "SELECT partition_id, status, error_message FROM worker_runs WHERE run_id = %s"
        " ORDER BY partition_id",
        run_id,
    )
    assert workers == [
        ("p0", "completed", None),
        ("p1", "failed", "operator: duplicate run"),
        ("p2", "failed", "operator: duplicate run"),
    ]
    assert await status(diamond_db, run_id) == "cancelled"
    with pytest.raises(NotFoundError):
        await diamond_db.cancel_run(uuid4(), "nothing")


async def test_cancelling_a_finished_run_does_not_mark_it_cancelled(diamond_db: Database) -> None:
    run = await diamond_db.create_run_metadata("full", 0)
    await diamond_db.complete_run(run.run_id)
    cancelled = await diamond_db.cancel_run(run.run_id, "too late")
    assert cancelled.cancelled_at is None
    assert await status(diamond_db, run.run_id) == "completed"


async def test_delete_run_refuses_a_running_run_and_deletes_a_finished_one(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run_id = await run_with_partitions(diamond_db, 2)
    await diamond_db.upsert_raw_diamonds(run_id, [RawDiamondInput("s1", "o1", {"a": 1})])
    with pytest.raises(RunStateError) as caught:
        await diamond_db.delete_run(run_id)
    assert isinstance(caught.value, DiamondDBError)
    assert caught.value.status == "running"
    age_run(diamond_db_url, run_id)
    with pytest.raises(RunStateError) as stalled:
        await diamond_db.delete_run(run_id)
    assert stalled.value.status == "stalled"
    assert scalar(diamond_db_url, "SELECT count(*) FROM partition_progress") == 2

    await diamond_db.cancel_run(run_id, "clean up")
    await diamond_db.delete_run(run_id)
    for table in ("run_metadata", "partition_progress", "worker_runs"):
        assert scalar(diamond_db_url, f"SELECT count(*) FROM {table}") == 0, table
    assert (
        scalar(diamond_db_url, "SELECT count(*) FROM raw_diamonds WHERE run_id = %s", run_id) == 1
    )
    with pytest.raises(NotFoundError):
        await diamond_db.delete_run(run_id)


# -- worker progress and consolidation -------------------------------------------


async def test_worker_progress_adds_up_while_running_only(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 1)
    worker = await diamond_db.create_worker_run(run.run_id, "p0", uuid4())
    async with Database(diamond_db_url, max_size=10) as db:
        updated = await asyncio.gather(
            *(db.update_worker_progress(worker.id, 7) for _ in range(50))
        )
    assert all(updated)
    await diamond_db.update_worker_run(worker.id, "failed", 350, "boom")
    assert not await diamond_db.update_worker_progress(worker.id, 7)
    assert not await diamond_db.update_worker_progress(uuid4(), 7)
    assert (
        scalar(diamond_db_url, "SELECT records_processed FROM worker_runs WHERE id = %s", worker.id)
        == 350
    )


async def test_concurrent_consolidators_statistics_add_up(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 1, supplier="vdb")
    async with Database(diamond_db_url, max_size=10) as db:
        started = await asyncio.gather(
            *(db.mark_consolidation_started(run.run_id) for _ in range(4))
        )
        await asyncio.gather(
            *(
                db.add_consolidation_stats(run.run_id, 1_000 + c, c)
                for c in range(4)
                for _ in range(25)
            )
        )
        finished = await asyncio.gather(*(db.finish_consolidation(run.run_id) for _ in range(4)))
    assert started.count(True) == 1
    assert sorted(finished, key=str) == [1, None, None, None]  # one bump, the first finish
    stored = fetch_dicts(diamond_db_url, "SELECT * FROM run_metadata WHERE run_id = %s", run.run_id)
    assert stored[0]["consolidation_processed"] == 25 * (1_000 + 1_001 + 1_002 + 1_003)
    assert stored[0]["consolidation_errors"] == 25 * (0 + 1 + 2 + 3)
    assert await diamond_db.get_dataset_version("vdb") == 1
    with pytest.raises(NotFoundError):
        await diamond_db.add_consolidation_stats(uuid4(), 1, 0)
    with pytest.raises(NotFoundError):
        await diamond_db.finish_consolidation(uuid4())


# -- dataset versions --------------------------------------------------------------


async def test_100_concurrent_bumps_return_100_distinct_increasing_versions(
    diamond_db: Database, diamond_db_url: str
) -> None:
    assert await diamond_db.get_dataset_version("nivoda") == 0
    async with Database(diamond_db_url, max_size=20) as db:
        versions = await asyncio.gather(*(db.bump_dataset_version("nivoda") for _ in range(100)))
    assert sorted(versions) == list(range(1, 101))
    assert await diamond_db.get_dataset_version("nivoda") == 100
    await diamond_db.bump_dataset_version("vdb")
    assert await diamond_db.get_dataset_versions() == {"nivoda": 100, "vdb": 1}


async def test_a_bump_in_a_transaction_commits_or_rolls_back_with_it(
    diamond_db: Database,
) -> None:
    with pytest.raises(RuntimeError):
        async with diamond_db.transaction() as tx:
            assert await tx.bump_dataset_version("nivoda") == 1
            raise RuntimeError("the job failed")
    assert await diamond_db.get_dataset_version("nivoda") == 0


async def test_purging_a_feeds_raw_payloads_bumps_its_version(diamond_db: Database) -> None:
    run = await diamond_db.create_run_metadata("full", 1, supplier="vdb")
    rows = [RawDiamondInput(f"s{n}", f"o{n}", {"n": n}) for n in range(3)]
    await diamond_db.upsert_raw_diamonds(run.run_id, rows, supplier="vdb")
    assert await diamond_db.purge_raw_payloads("vdb") == 3
    assert await diamond_db.get_dataset_versions() == {"vdb": 1}
    assert await diamond_db.purge_raw_payloads("vdb") == 0  # nothing changed: no bump
    assert await diamond_db.get_dataset_versions() == {"vdb": 1}

"""Resumable workers: partition progress, record_page, a simulated worker fleet, cancel races."""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from helpers import fetch, fetch_dicts, scalar

from diamond_db import (
    Database,
    NotFoundError,
    PartitionProgress,
    RawDiamondInput,
    ValidationError,
)

PAGE_SIZE = 10


def supplier_page(partition: str, offset: int, pages: int) -> list[RawDiamondInput]:
    """The supplier's page of a partition at an offset (empty past the last page)."""
    if offset >= pages * PAGE_SIZE:
        return []
    return [
        RawDiamondInput(f"{partition}-{n}", f"offer-{partition}-{n}", {"n": n, "p": partition})
        for n in range(offset, offset + PAGE_SIZE)
    ]


async def started_run(db: Database, partitions: list[str]) -> tuple[UUID, dict[str, UUID]]:
    """A run with one running worker run per partition (work items estimate their rows)."""
    run = await db.create_run_metadata("full", len(partitions))
    workers = {}
    for partition in partitions:
        worker = await db.create_worker_run(
            run.run_id, partition, uuid4(), {"estimated_records": 4 * PAGE_SIZE}
        )
        workers[partition] = worker.id
    return run.run_id, workers


def partition_row(url: str, run_id: UUID, partition: str) -> dict[str, Any]:
    [row] = fetch_dicts(
        url,
        "SELECT * FROM partition_progress WHERE run_id = %s AND partition_id = %s",
        run_id,
        partition,
    )
    return row


def records_processed(url: str, worker_run_id: UUID) -> int:
    return int(
        scalar(url, "SELECT records_processed FROM worker_runs WHERE id = %s", worker_run_id)
    )


# -- one partition ---------------------------------------------------------------


async def test_init_partition_is_idempotent_under_concurrent_redelivery(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 1)
    async with Database(diamond_db_url, max_size=10) as db:
        rows = await asyncio.gather(*(db.init_partition(run.run_id, "p0") for _ in range(20)))
    assert len({(r.run_id, r.partition_id, r.updated_at) for r in rows}) == 1
    assert rows[0] == PartitionProgress(
        run_id=run.run_id,
        partition_id="p0",
        next_offset=0,
        completed=False,
        failed=False,
        attempts=1,
        last_error=None,
        updated_at=rows[0].updated_at,
    )
    assert await diamond_db.advance_partition(run.run_id, "p0", 0, 10)
    again = await diamond_db.init_partition(str(run.run_id), "p0")
    assert again.next_offset == 10 == partition_row(diamond_db_url, run.run_id, "p0")["next_offset"]
    assert await diamond_db.get_partition(run.run_id, "p1") is None
    with pytest.raises(NotFoundError):
        await diamond_db.init_partition(uuid4(), "p0")


async def test_advance_partition_lets_one_of_many_concurrent_callers_win(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 1)
    await diamond_db.init_partition(run.run_id, "p0")
    async with Database(diamond_db_url, max_size=10) as db:
        won = await asyncio.gather(
            *(db.advance_partition(run.run_id, "p0", 0, 10 + n) for n in range(10))
        )
    assert won.count(True) == 1
    assert partition_row(diamond_db_url, run.run_id, "p0")["next_offset"] == 10 + won.index(True)
    with pytest.raises(ValidationError) as caught:
        await diamond_db.advance_partition(run.run_id, "p0", 10, 10)
    assert caught.value.argument == "new_offset"
    assert not await diamond_db.advance_partition(run.run_id, "missing", 0, 10)


async def test_complete_and_fail_are_compare_and_set_and_count_the_run_once(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 2)
    for partition in ("a", "b"):
        await diamond_db.init_partition(run.run_id, partition)
    await diamond_db.advance_partition(run.run_id, "a", 0, 10)
    assert not await diamond_db.complete_partition(run.run_id, "a", 0)  # not at that offset
    async with Database(diamond_db_url, max_size=10) as db:
        completed = await asyncio.gather(
            *(db.complete_partition(run.run_id, "a", 10) for _ in range(5))
        )
        failed = await asyncio.gather(
            *(db.fail_partition(run.run_id, "b", f"timeout {n}") for n in range(5))
        )
    assert completed.count(True) == 1
    assert failed.count(True) == 1
    assert not await diamond_db.advance_partition(run.run_id, "a", 10, 20)  # completed
    assert not await diamond_db.advance_partition(run.run_id, "b", 0, 10)  # failed
    assert not await diamond_db.fail_partition(run.run_id, "a", "too late")  # completed
    stored = fetch_dicts(
        diamond_db_url, "SELECT * FROM run_metadata WHERE run_id = %s", run.run_id
    )[0]
    assert (stored["completed_workers"], stored["failed_workers"]) == (1, 1)
    assert partition_row(diamond_db_url, run.run_id, "b")["last_error"].startswith("timeout ")


async def test_retry_resumes_where_the_failed_partition_stopped(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 1)
    await diamond_db.init_partition(run.run_id, "p0")
    await diamond_db.advance_partition(run.run_id, "p0", 0, 30)
    assert not await diamond_db.retry_partition(run.run_id, "p0")  # not failed
    assert await diamond_db.fail_partition(run.run_id, "p0", "supplier 503")
    assert await diamond_db.retry_partition(run.run_id, "p0")
    assert not await diamond_db.retry_partition(run.run_id, "p0")
    row = partition_row(diamond_db_url, run.run_id, "p0")
    assert (row["failed"], row["next_offset"], row["attempts"]) == (False, 30, 2)
    assert (
        scalar(
            diamond_db_url, "SELECT failed_workers FROM run_metadata WHERE run_id = %s", run.run_id
        )
        == 0
    )
    # A new failure episode counts again.
    assert await diamond_db.fail_partition(run.run_id, "p0", "supplier 503")
    assert [p.attempts for p in await diamond_db.list_partitions(run.run_id)] == [2]
    assert (
        scalar(
            diamond_db_url, "SELECT failed_workers FROM run_metadata WHERE run_id = %s", run.run_id
        )
        == 1
    )


async def test_stalled_partitions_are_those_in_progress_not_updated_lately(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run = await diamond_db.create_run_metadata("full", 3)
    for partition in ("done", "failed", "stuck", "fresh"):
        await diamond_db.init_partition(run.run_id, partition)
    await diamond_db.complete_partition(run.run_id, "done", 0)
    await diamond_db.fail_partition(run.run_id, "failed", "x")
    fetch(
        diamond_db_url,
        "UPDATE partition_progress SET updated_at = now() - interval '1 hour'"
        " WHERE run_id = %s AND partition_id <> 'fresh' RETURNING 1",
        run.run_id,
    )
    stalled = await diamond_db.get_stalled_partitions(timedelta(minutes=10))
    assert [(p.partition_id, p.next_offset) for p in stalled] == [("stuck", 0)]
    everything = await diamond_db.get_stalled_partitions(timedelta(0))
    assert [p.partition_id for p in everything] == ["stuck", "fresh"]
    with pytest.raises(ValidationError):
        await diamond_db.get_stalled_partitions(timedelta(seconds=-1))


async def test_record_page_advances_and_counts_together_or_not_at_all(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run_id, workers = await started_run(diamond_db, ["p0"])
    await diamond_db.init_partition(run_id, "p0")
    page = supplier_page("p0", 0, 4)
    assert await diamond_db.record_page(run_id, "p0", workers["p0"], 0, 10, page)
    # The same page redelivered: refused, nothing counted twice.
    assert not await diamond_db.record_page(run_id, "p0", workers["p0"], 0, 10, page)
    assert records_processed(diamond_db_url, workers["p0"]) == 10
    # A worker run that is not running cannot advance the offset either.
    await diamond_db.update_worker_run(workers["p0"], "completed", 10)
    assert not await diamond_db.record_page(run_id, "p0", workers["p0"], 10, 20, page)
    assert partition_row(diamond_db_url, run_id, "p0")["next_offset"] == 10
    assert records_processed(diamond_db_url, workers["p0"]) == 10
    with pytest.raises(ValidationError) as caught:
        await diamond_db.record_page(run_id, "p0", workers["p0"], 10, 20, 10)  # type: ignore[arg-type]
    assert caught.value.argument == "rows"


# -- the simulated fleet -----------------------------------------------------------


class Killed(Exception):
    """A worker crashing at a chosen point (its task is cancelled there)."""


# What may happen to a worker handling one message, with weights. `gap` dies after
# record_page advanced the offset, before the next page is enqueued: the partition
# stalls until the scheduler re-drives it.
FATES = {"ok": 70, "before_store": 5, "after_store": 5, "terminated": 5, "gap": 8, "stale": 7}


class Fleet:
    """Page messages on an at-least-once queue, worked by 8 worker tasks over real connections.

    A worker that dies leaves its message unacknowledged: it is delivered again.
    Acknowledged messages are sometimes delivered again anyway (`stale`).
    """

    def __init__(self, url: str, run_id: UUID, workers: dict[str, UUID], pages: int) -> None:
        self.url = url
        self.run_id = run_id
        self.worker_runs = workers
        self.pages = pages
        self.queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        self.rng = random.Random(14)
        self.recorded: dict[str, list[tuple[int, int]]] = defaultdict(list)
        self.events: Counter[str] = Counter()
        self.forced_gap = (next(iter(workers)), 0)  # at least one stall, whatever the draws

    def fate(self, message: tuple[str, int]) -> str:
        if message == self.forced_gap and self.events["forced"] == 0:
            self.events["forced"] += 1
            return "gap"
        return self.rng.choices(list(FATES), weights=list(FATES.values()))[0]

    async def slot(self) -> None:
        """One worker at a time; a dead one is replaced by a fresh one."""
        while True:
            worker = asyncio.create_task(self.worker())
            await asyncio.wait([worker])
            if worker.cancelled():
                self.events["killed"] += 1
            elif isinstance(worker.exception(), psycopg.OperationalError):
                self.events["terminated"] += 1
            else:
                worker.result()  # an unexpected error fails the test

    async def worker(self) -> None:
        async with Database(self.url, min_size=1, max_size=1) as db:
            while True:
                message = await self.queue.get()
                try:
                    await self.handle(db, message)
                except BaseException:
                    self.queue.put_nowait(message)  # never acknowledged: redelivered
                    raise
                finally:
                    self.queue.task_done()

    async def die(self) -> None:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        await asyncio.sleep(0)  # the cancellation lands here, as a kill would

    async def handle(self, db: Database, message: tuple[str, int]) -> None:
        partition, offset = message
        fate = self.fate(message)
        progress = await db.init_partition(self.run_id, partition)
        if progress.completed or progress.failed or offset != progress.next_offset:
            self.events["dropped"] += 1  # a redelivered message: its page is done
            return
        if fate == "before_store":
            await self.die()
        rows = supplier_page(partition, offset, self.pages)
        if not rows:
            assert await db.complete_partition(self.run_id, partition, offset)
            return
        await self.store(db, rows, terminate=fate == "terminated")
        if fate == "after_store":
            await self.die()
        recorded = await db.record_page(
            self.run_id, partition, self.worker_runs[partition], offset, offset + len(rows), rows
        )
        if not recorded:  # a concurrent duplicate recorded it first
            self.events["lost the race"] += 1
            return
        self.recorded[partition].append((offset, offset + len(rows)))
        if fate == "gap":
            await self.die()
        self.queue.put_nowait((partition, offset + len(rows)))
        if fate == "stale":
            self.queue.put_nowait(message)

    async def store(self, db: Database, rows: list[RawDiamondInput], *, terminate: bool) -> None:
        """upsert_raw_diamonds; with `terminate`, its backend is killed before the commit."""
        if not terminate:
            await db.upsert_raw_diamonds(self.run_id, rows)
            return
        async with db.transaction() as tx:
            await tx.upsert_raw_diamonds(self.run_id, rows)
            pid = tx.connection.info.backend_pid
            async with await psycopg.AsyncConnection.connect(self.url, autocommit=True) as killer:
                await killer.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))

    async def run(self, db: Database) -> int:
        """Work every partition to completion; how many stalled partitions were re-driven."""
        for partition in self.worker_runs:
            self.queue.put_nowait((partition, 0))
        slots = [asyncio.create_task(self.slot()) for _ in range(8)]
        redriven = 0
        try:
            while True:
                await _first(self.queue.join(), slots)
                stalled = await db.get_stalled_partitions(timedelta(0))
                if not stalled:
                    return redriven
                redriven += len(stalled)
                for p in stalled:
                    self.queue.put_nowait((p.partition_id, p.next_offset))
        finally:
            for slot in slots:
                slot.cancel()
            await asyncio.gather(*slots, return_exceptions=True)


async def _first(waited: Awaitable[Any], slots: list[asyncio.Task[None]]) -> None:
    """Wait for `waited`, failing at once if a worker slot failed (an unexpected error)."""
    done, _ = await asyncio.wait(
        [asyncio.ensure_future(waited), *slots], return_when=asyncio.FIRST_COMPLETED
    )
    for task in done:
        if task in slots:
            task.result()


async def test_a_fleet_with_redeliveries_and_kills_stores_every_page_exactly_once(
    diamond_db: Database, diamond_db_url: str
) -> None:
    pages = 4
    partitions = [f"w{w}-p{p}" for w in range(8) for p in range(3)]
    run_id, workers = await started_run(diamond_db, partitions)
    fleet = Fleet(diamond_db_url, run_id, workers, pages)
    redriven = await asyncio.wait_for(fleet.run(diamond_db), timeout=60)

    assert redriven >= 1
    assert fleet.events["killed"] >= 1
    assert fleet.events["terminated"] >= 1
    expected_pages = [(n * PAGE_SIZE, (n + 1) * PAGE_SIZE) for n in range(pages)]
    for partition in partitions:  # every offset advanced once, in order: none skipped or repeated
        assert fleet.recorded[partition] == expected_pages, partition
    stored = {
        row[0] for row in fetch(diamond_db_url, "SELECT supplier_stone_id FROM raw_diamonds_nivoda")
    }
    assert stored == {f"{p}-{n}" for p in partitions for n in range(pages * PAGE_SIZE)}
    progress = await diamond_db.list_partitions(run_id)
    assert {(p.next_offset, p.completed, p.failed) for p in progress} == {
        (pages * PAGE_SIZE, True, False)
    }
    assert len(progress) == len(partitions)
    for partition, worker_run in workers.items():
        assert records_processed(diamond_db_url, worker_run) == pages * PAGE_SIZE, partition
    run = await diamond_db.get_run_metadata(run_id)
    assert run is not None
    assert (run.completed_workers, run.failed_workers) == (24, 0)
    details = await diamond_db.get_run_details(run_id)
    assert details is not None
    assert (details.workers_completed, details.workers_pending, details.rows_processed) == (
        24,
        0,
        24 * pages * PAGE_SIZE,
    )
    assert details.estimated_rows == 24 * 4 * PAGE_SIZE


# -- cancel racing workers --------------------------------------------------------


async def test_a_page_in_flight_when_cancel_lands_cannot_advance(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run_id, workers = await started_run(diamond_db, ["p0", "p1"])
    for partition in workers:
        await diamond_db.init_partition(run_id, partition)
    page = supplier_page("p0", 0, 4)
    await diamond_db.upsert_raw_diamonds(run_id, page)  # the worker stored its page ...
    cancelled = await diamond_db.cancel_run(run_id, "operator: wrong feed")  # ... cancel lands
    assert (cancelled.partitions_failed, cancelled.worker_runs_failed) == (2, 2)
    assert not await diamond_db.record_page(run_id, "p0", workers["p0"], 0, 10, page)
    assert not await diamond_db.advance_partition(run_id, "p1", 0, 10)
    assert not await diamond_db.complete_partition(run_id, "p1", 0)
    assert not await diamond_db.retry_partition(run_id, "p0")
    assert not await diamond_db.update_worker_progress(workers["p0"], 10)
    late = await diamond_db.init_partition(run_id, "p2")  # a message delivered after the cancel
    assert late.failed
    assert late.last_error == "operator: wrong feed"
    assert partition_row(diamond_db_url, run_id, "p0")["next_offset"] == 0
    assert records_processed(diamond_db_url, workers["p0"]) == 0
    assert await diamond_db.get_stalled_partitions(timedelta(0)) == []


async def test_cancel_racing_workers_leaves_each_page_counted_iff_its_offset_moved(
    diamond_db: Database, diamond_db_url: str
) -> None:
    partitions = [f"p{n}" for n in range(12)]
    run_id, workers = await started_run(diamond_db, partitions)
    for partition in partitions:
        await diamond_db.init_partition(run_id, partition)

    def page_of(partition: str) -> Callable[[Database], Awaitable[bool]]:
        rows = supplier_page(partition, 0, 4)
        return lambda db: db.record_page(run_id, partition, workers[partition], 0, 10, rows)

    async with Database(diamond_db_url, max_size=14) as db:
        results = await asyncio.gather(
            *(page_of(p)(db) for p in partitions[:6]),
            db.cancel_run(run_id, "cancelled mid-page"),
            *(page_of(p)(db) for p in partitions[6:]),
        )
    recorded = dict(zip(partitions, [*results[:6], *results[7:]], strict=True))
    for partition, advanced in recorded.items():
        row = partition_row(diamond_db_url, run_id, partition)
        assert row["failed"]
        assert not row["completed"]
        assert (row["next_offset"] == 10) is advanced
        assert records_processed(diamond_db_url, workers[partition]) == (10 if advanced else 0)
    statuses = {r[0] for r in fetch(diamond_db_url, "SELECT status FROM worker_runs")}
    assert statuses == {"failed"}
    details = await diamond_db.get_run_details(run_id)
    assert details is not None
    assert details.status == "cancelled"

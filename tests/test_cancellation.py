"""Cancellation: a call whose task was cancelled does not run its statement afterwards.

Web frameworks cancel a request's task when its client goes away or its timeout fires. On
Python 3.11 psycopg_pool's getconn() (an asyncio.wait_for inside) can swallow a cancellation
that arrives just as the pool hands the waiting task a connection (CPython gh-86296); the
call then carried on and sent its statement. Row locks held by a separate connection make
statements queue, so what took effect after a cancellation is checked in the database.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
import pytest
from helpers import diamond, fetch, scalar
from psycopg.conninfo import make_conninfo

from diamond_db import Database, QueryEvent
from diamond_db.testing import reset_database

APP = "diamond_db-cancel-test"  # application_name of the library's connections in these tests

WAVES = 40
PER_WAVE = 10
LOCKED_PER_WAVE = 6
POOL_SIZE = 5
MAX_DELAY = 0.150  # each call is cancelled after a random 0-150 ms
SETTLE = 2.0  # bound on the wait for cancelled calls to end before the locks are released
BASE_PRICE = diamond("x").supplier_price_cents


def _tagged(url: str) -> str:
    return make_conninfo(url, application_name=APP)


def _backends(url: str, where: str = "true") -> int:
    """The library's connections (by application_name) to the database matching `where`."""
    return int(
        scalar(
            url,
            "SELECT count(*) FROM pg_stat_activity "
            f"WHERE datname = current_database() AND application_name = %s AND {where}",
            APP,
        )
    )


def _no_backend_left(url: str, within: float) -> int:
    """Wait up to `within` s for the server to end the closed pool's backends; how many remain."""
    deadline = time.monotonic() + within
    while (left := _backends(url)) and time.monotonic() < deadline:
        time.sleep(0.05)  # backends exit asynchronously after their client disconnects
    return left


# -- one call, cancelled exactly as the pool hands it a connection -------------------------


async def _until_queued(db: Database, waiting: int) -> None:
    """Yield to the loop, one iteration at a time, until `waiting` callers are queued.

    Checked every iteration, so the caller resumes in the iteration where the pool's
    queue reached that length (with 0: where it handed its last waiter a connection).
    """
    for _ in range(100_000):
        if db.pool.get_stats().get("requests_waiting", 0) == waiting:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"the pool's queue never had {waiting} callers")


async def _statement(db: Database, target: UUID, run_id: UUID) -> None:
    await db.update_diamond_availability(target, "on_hold", "handoff")


async def _transaction(db: Database, target: UUID, run_id: UUID) -> None:
    async with db.transaction() as tx:
        await tx.update_diamond_availability(target, "on_hold", "handoff")
        await tx.increment_completed_workers(run_id)


async def _multi_statement(db: Database, target: UUID, run_id: UUID) -> None:
    # upsert_diamond writes, then reads the row back, in a transaction of its own
    await db.upsert_diamond(diamond("handoff", supplier_price_cents=BASE_PRICE + 1))


HANDOFF_CALLS: dict[str, Callable[[Database, UUID, UUID], Coroutine[Any, Any, None]]] = {
    "statement": _statement,
    "transaction": _transaction,
    "multi-statement operation": _multi_statement,
}


@pytest.mark.parametrize("call", list(HANDOFF_CALLS))
async def test_a_call_cancelled_as_the_pool_hands_it_a_connection_sends_nothing(
    diamond_db_url: str, call: str
) -> None:
    reset_database(diamond_db_url)
    events: list[QueryEvent] = []
    async with Database(diamond_db_url, min_size=1, max_size=1, on_query=events.append) as db:
        target = (await db.upsert_diamond(diamond("handoff"))).id
        run = await db.create_run_metadata("full", 1)
        holding, release = asyncio.Event(), asyncio.Event()

        async def hold() -> None:
            async with db.transaction() as tx:  # holds the only connection
                await tx.get_run_metadata(run.run_id)
                holding.set()
                await release.wait()

        holder = asyncio.create_task(hold())
        await holding.wait()
        waiter = asyncio.create_task(HANDOFF_CALLS[call](db, target, run.run_id))
        await _until_queued(db, 1)
        sent = len(events)
        release.set()  # the holder commits and hands its connection to the waiter ...
        await _until_queued(db, 0)
        waiter.cancel()  # ... which is cancelled in that very loop iteration
        with pytest.raises(asyncio.CancelledError):
            await waiter
        await holder
        assert [e.name for e in events[sent:]] == [], "the cancelled call sent statements"
        # The connection went back to the pool: the next call gets it at once.
        assert await asyncio.wait_for(db.get_run_metadata(run.run_id), 2) == run
    rows = fetch(
        diamond_db_url,
        "SELECT availability, hold_id, supplier_price_cents FROM diamonds WHERE id = %s",
        target,
    )
    assert rows == [("available", None, BASE_PRICE)]
    assert (
        scalar(
            diamond_db_url,
            "SELECT completed_workers FROM run_metadata WHERE run_id = %s",
            run.run_id,
        )
        == 0
    )


async def test_a_connection_handed_back_as_its_caller_is_cancelled_is_not_lost(
    diamond_db_url: str,
) -> None:
    """Every operation ends with Pool.put_back; a cancellation landing there must not leak.

    On Python 3.11 handing a connection to a client that queued in the same loop iteration
    waits for that client's lock: a plain putconn() cancelled there loses the connection
    (the pool counts it, nobody can get it; the queued client times out).
    """
    reset_database(diamond_db_url)
    async with Database(diamond_db_url, min_size=1, max_size=1, timeout=2) as db:
        run = await db.create_run_metadata("full", 1)
        conn = await db.pool.getconn()  # the only connection, as an operation holds it
        waiter = asyncio.create_task(db.get_run_metadata(run.run_id))  # queues for it
        returner = asyncio.create_task(db.pool.put_back(conn))  # the operation ends
        await asyncio.sleep(0)  # both run: the waiter queues, the returner hands it over
        returner.cancel()  # as the task returning it is cancelled
        await asyncio.gather(returner, return_exceptions=True)
        assert await waiter == run
        stats = db.pool.get_stats()
        assert stats["pool_size"] == stats["pool_available"] == 1, f"{stats}"


# -- the storm ------------------------------------------------------------------------------


@dataclass
class _Call:
    """One operation of a wave: its kind, the diamond it writes, whether it was cancelled."""

    kind: str
    target: UUID
    stone: str
    tag: str
    locked: bool
    task: asyncio.Task[Any] | None = None
    cancelled: bool = False  # task.cancel() was called while the task was still running


class _Wave:
    """The calls of one wave, and the cancellations requested while the locks were held."""

    def __init__(self, calls: list[_Call], *, siblings: bool) -> None:
        self.calls = calls
        self.siblings = siblings
        self.locks_held = True

    def cancel(self, call: _Call) -> None:
        """Cancel the call once (a second cancellation would interrupt psycopg's own)."""
        if self.locks_held and call.task is not None and not call.cancelled:
            call.cancelled = call.task.cancel()

    def one_ended(self, _: object) -> None:
        """With `siblings`, cancel every call still running as soon as one ends.

        That is what a TaskGroup does when a child fails, or a caller of
        asyncio.wait(FIRST_COMPLETED) with the rest: the cancellations land right after
        the call that ended handed its connection to one that waited for it.
        """
        if self.siblings:
            self.siblings = False
            for call in self.calls:
                if call.task is not None and not call.task.done():
                    self.cancel(call)


async def _run(db: Database, call: _Call, run_id: UUID) -> Any:
    if call.kind == "single":
        return await db.update_diamond_availability(call.target, "on_hold", call.tag)
    if call.kind == "compare-and-set":
        return await db.update_diamond_availability(
            call.target, "on_hold", call.tag, expected="available"
        )
    if call.kind == "transaction":
        async with db.transaction() as tx:
            await tx.update_diamond_availability(call.target, "on_hold", call.tag)
            await tx.increment_completed_workers(run_id)
        return True
    # "multi": upsert_diamond writes and reads back in its own transaction
    return await db.upsert_diamond(diamond(call.stone, supplier_price_cents=_price(call.tag)))


def _price(tag: str) -> int:
    return BASE_PRICE + 1 + int(tag.split("-")[1]) * PER_WAVE + int(tag.split("-")[2])


def _took_effect(call: _Call, row: tuple[Any, ...]) -> bool:
    hold_id, price = row
    if call.kind == "multi":
        return bool(price == _price(call.tag))
    return bool(hold_id == call.tag)


KINDS = ("single", "compare-and-set", "transaction", "multi")


async def test_a_cancellation_storm_runs_nothing_after_the_cancel(diamond_db_url: str) -> None:
    seed = int(os.environ.get("DIAMOND_DB_STORM_SEED", random.randrange(1 << 32)))
    rng = random.Random(seed)
    reset_database(diamond_db_url)
    loop = asyncio.get_running_loop()
    errors: list[str] = []  # exceptions other than CancelledError
    lost: list[str] = []  # cancelled before they ended, yet returned normally
    ran_after_cancel: list[str] = []  # cancelled while the lock was held, yet took effect
    unrecorded: list[str] = []  # returned normally, yet nothing in the database
    cancelled = 0
    every_call: list[_Call] = []
    started = time.monotonic()
    async with Database(_tagged(diamond_db_url), min_size=POOL_SIZE, max_size=POOL_SIZE) as db:
        stones = [f"storm-{i}" for i in range(WAVES * PER_WAVE)]
        assert await db.upsert_diamonds([diamond(s) for s in stones]) == len(stones)
        ids = dict(fetch(diamond_db_url, "SELECT supplier_stone_id, id FROM diamonds"))
        run = await db.create_run_metadata("full", WAVES * PER_WAVE)
        async with await psycopg.AsyncConnection.connect(diamond_db_url) as holder:
            for wave in range(WAVES):
                locked = set(rng.sample(range(PER_WAVE), LOCKED_PER_WAVE))
                calls = [
                    _Call(
                        kind=rng.choice(KINDS),
                        target=ids[stones[wave * PER_WAVE + i]],
                        stone=stones[wave * PER_WAVE + i],
                        tag=f"w-{wave}-{i}",
                        locked=i in locked,
                    )
                    for i in range(PER_WAVE)
                ]
                every_call += calls
                await holder.execute(
                    "SELECT 1 FROM diamonds WHERE id = ANY(%s) FOR UPDATE",
                    ([c.target for c in calls if c.locked],),
                )
                wave_of = _Wave(calls, siblings=rng.random() < 0.5)
                fired: list[asyncio.Future[None]] = []
                for call in calls:
                    call.task = asyncio.create_task(_run(db, call, run.run_id))
                    call.task.add_done_callback(wave_of.one_ended)
                    done = loop.create_future()
                    fired.append(done)

                    def cancel(
                        call: _Call = call, done: asyncio.Future[None] = done, wave: _Wave = wave_of
                    ) -> None:
                        wave.cancel(call)
                        done.set_result(None)

                    loop.call_later(rng.uniform(0, MAX_DELAY), cancel)
                await asyncio.gather(*fired)  # every cancellation was requested
                # Cancelled calls end promptly: psycopg cancels a statement queued behind the
                # lock server-side. One whose cancellation was lost is still queued there.
                pending = [c.task for c in calls if c.cancelled and c.task is not None]
                if pending:
                    await asyncio.wait(pending, timeout=SETTLE)
                wave_of.locks_held = False
                await holder.rollback()  # releases the locks: whatever still queues runs now
                outcomes = await asyncio.gather(
                    *(c.task for c in calls if c.task is not None), return_exceptions=True
                )
                rows = {
                    row[0]: row[1:]
                    for row in fetch(
                        diamond_db_url,
                        "SELECT id, hold_id, supplier_price_cents FROM diamonds WHERE id = ANY(%s)",
                        [c.target for c in calls],
                    )
                }
                for call, outcome in zip(calls, outcomes, strict=True):
                    name = f"{call.tag} {call.kind}{' (locked)' if call.locked else ''}"
                    effect = _took_effect(call, rows[call.target])
                    cancelled += call.cancelled
                    if isinstance(outcome, asyncio.CancelledError):
                        if call.locked and effect:
                            ran_after_cancel.append(name)
                    elif isinstance(outcome, BaseException):
                        errors.append(f"{name}: {outcome!r}")
                    elif call.cancelled:
                        lost.append(name)
                        if call.locked and effect:
                            ran_after_cancel.append(name)
                    elif not effect:
                        unrecorded.append(name)
        storm = time.monotonic() - started
        print(
            f"\ncancellation storm on Python {sys.version.split()[0]} (seed {seed}): "
            f"{WAVES * PER_WAVE} calls, {cancelled} cancelled before they ended, in {storm:.1f} s;"
            f" {len(lost)} lost cancellations, {len(ran_after_cancel)} ran after their cancel,"
            f" {len(errors)} other errors"
        )

        # Transactions were all-or-nothing: one increment per diamond a transaction held.
        tx_tags = [c.tag for c in every_call if c.kind == "transaction"]
        held_by_tx = scalar(
            diamond_db_url, "SELECT count(*) FROM diamonds WHERE hold_id = ANY(%s)", tx_tags
        )
        completed = scalar(
            diamond_db_url,
            "SELECT completed_workers FROM run_metadata WHERE run_id = %s",
            run.run_id,
        )

        # The pool is healthy: 200 operations succeed promptly, then nothing is checked out.
        started = time.monotonic()
        after = await asyncio.gather(
            *(db.get_diamond_by_id(ids[stones[i % len(stones)]]) for i in range(200))
        )
        prompt = time.monotonic() - started
        assert all(d is not None for d in after)
        stats = db.pool.get_stats()
        assert stats["requests_waiting"] == 0, f"{stats}"
        assert stats["pool_available"] == stats["pool_size"] == POOL_SIZE, f"{stats}"
        assert _backends(diamond_db_url, "state <> 'idle'") == 0, "a backend is left mid-query"
        assert _backends(diamond_db_url, "xact_start IS NOT NULL") == 0, "left in a transaction"
    left = _no_backend_left(diamond_db_url, within=5)

    print(f"200 calls after it took {prompt * 1000:.0f} ms")
    assert errors == [], errors
    assert ran_after_cancel == [], f"ran after their caller was cancelled: {ran_after_cancel}"
    assert lost == [], f"cancelled but carried on: {lost}"
    assert unrecorded == [], f"returned normally but wrote nothing: {unrecorded}"
    assert completed == held_by_tx, f"{completed} increments for {held_by_tx} transaction holds"
    assert prompt < 5, f"200 calls after the storm took {prompt:.2f} s"
    assert left == 0, f"{left} backends still there 5 s after close"

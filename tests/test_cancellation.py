"""Cancellation: a call whose task was cancelled does not run its statement afterwards.

Web frameworks cancel a request's task when its client goes away or its timeout fires. On
Python 3.11 psycopg_pool's getconn() (an asyncio.wait_for inside) can swallow a cancellation
that arrives just as the pool hands the waiting task a connection (CPython gh-86296); the
call then carried on and sent its statement. Row locks held by a separate connection make
statements queue, so what took effect after a cancellation is checked in the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any
from uuid import UUID

import pytest
from helpers import diamond, fetch, scalar

from diamond_db import Database, QueryEvent
from diamond_db.testing import reset_database

BASE_PRICE = diamond("x").supplier_price_cents


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

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
    """Let other tasks run until `waiting` callers wait in the pool's queue."""
    for _ in range(10_000):
        if db.pool.get_stats().get("requests_waiting", 0) >= waiting:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{waiting} callers never queued for a connection")


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
        async with db.transaction() as tx:  # holds the only connection
            await tx.get_run_metadata(run.run_id)
            waiter = asyncio.create_task(HANDOFF_CALLS[call](db, target, run.run_id))
            await _until_queued(db, 1)
            sent = len(events)
        # The transaction's end just handed its connection to the waiter, whose wake-up is
        # queued: the cancellation arrives in the same loop iteration.
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
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

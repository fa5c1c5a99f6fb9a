"""Faults against a server the test controls: restarts, dropped connections, an unreachable
server, statement timeouts and batch atomicity.

Runs on its own local cluster (the `diamond_db_cluster` fixture), never on the session's
server: it stops and restarts it. Skipped, with the reason, under DIAMOND_DB_TEST_URL.
"""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from helpers import diamond, scalar
from psycopg_pool import PoolTimeout

from diamond_db import (
    Database,
    DatabaseUnavailable,
    QueryEvent,
    RawDiamondInput,
    ValidationError,
)
from diamond_db.testing import LocalDatabase, reset_database

# Failures an operation may report while the server restarts under it.
OUTAGE_ERRORS = (psycopg.OperationalError, PoolTimeout)


@pytest.fixture
def cluster(diamond_db_cluster: LocalDatabase) -> Iterator[LocalDatabase]:
    """The controlled cluster, emptied before the test and running again after it."""
    reset_database(diamond_db_cluster.url)
    try:
        yield diamond_db_cluster
    finally:
        try:
            psycopg.connect(diamond_db_cluster.url, connect_timeout=2).close()
        except psycopg.OperationalError:
            diamond_db_cluster.cluster.start()


def _backends(url: str) -> int:
    """Client connections to the test database, other than the one asking."""
    return int(
        scalar(
            url,
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
    )


def _terminate_all(url: str) -> int:
    """pg_terminate_backend on every other connection to the database; waits until they exit."""
    return int(
        scalar(
            url,
            "WITH others AS MATERIALIZED (SELECT pid FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()) "
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 5000)) FROM others",
        )
    )


# -- server restart under load --------------------------------------------------


async def test_restart_under_load_loses_nothing_and_recovers_within_the_timeout(
    cluster: LocalDatabase,
) -> None:
    timeout = 5.0
    async with Database(cluster.url, min_size=5, max_size=15, timeout=timeout) as db:
        run = await db.create_run_metadata("full", 10_000)
        await db.upsert_diamond(diamond("seed"))
        upserted: list[str] = []
        counters: list[int] = []
        attempts = {"increment": 0}
        failures: list[BaseException] = []
        restarted = asyncio.Event()
        loaded = asyncio.Event()  # set once 100 writes succeeded: restart under real load

        async def worker(n: int) -> None:
            i = 0
            while not restarted.is_set():
                i += 1
                kind = (n + i) % 3
                try:
                    if kind == 0:
                        page = await db.search_diamonds(limit=5)
                        assert page.total is not None
                        assert page.total >= 1
                    elif kind == 1:
                        stone = f"w{n}-{i}"
                        await db.upsert_diamond(diamond(stone))
                        upserted.append(stone)
                    else:
                        attempts["increment"] += 1
                        counts = await db.increment_completed_workers(run.run_id)
                        counters.append(counts.completed_workers)
                except OUTAGE_ERRORS as error:
                    failures.append(error)
                if len(upserted) + len(counters) >= 100:
                    loaded.set()

        async def restart() -> None:
            await loaded.wait()
            await asyncio.to_thread(cluster.cluster.restart)
            restarted.set()

        await asyncio.gather(restart(), *(worker(n) for n in range(50)))

        # Every new operation succeeds within the connect timeout, with the same Database.
        started = time.monotonic()
        after = await asyncio.gather(
            *(db.upsert_diamond(diamond(f"after-{n}")) for n in range(25)),
            *(db.search_diamonds(limit=5) for _ in range(25)),
        )
        recovery = time.monotonic() - started
        assert len(after) == 50
        assert recovery < timeout, f"recovery took {recovery:.2f} s"
        print(
            f"\nrestart under load: {len(failures)} operations failed during the restart; "
            f"all 50 after it succeeded in {recovery * 1000:.0f} ms"
        )

    # Every write that reported success is there, none twice.
    stored = (
        scalar(
            cluster.url,
            "SELECT array_agg(supplier_stone_id) FROM diamonds WHERE supplier_stone_id LIKE 'w%%'",
        )
        or []
    )
    assert set(upserted) <= set(stored)
    assert len(stored) == len(set(stored))
    assert len(counters) == len(set(counters))  # each success saw its own increment
    completed = scalar(
        cluster.url, "SELECT completed_workers FROM run_metadata WHERE run_id = %s", run.run_id
    )
    assert len(counters) <= completed <= attempts["increment"]  # applied at most once each


# -- dropped connections --------------------------------------------------------


async def test_terminated_connections_are_replaced_together(cluster: LocalDatabase) -> None:
    async with Database(cluster.url, min_size=10, max_size=10, timeout=5) as db:
        await db.pool.wait()
        run = await db.create_run_metadata("full", 1)
        assert _terminate_all(cluster.url) >= 10
        assert _backends(cluster.url) == 0

        started = time.monotonic()
        assert await db.get_run_metadata(run.run_id) == run  # finds dead ones, sweeps the rest
        first = time.monotonic() - started
        # The one checkout sweeps the whole pool: all ten are replaced without further use.
        sweeping = db.pool.sweeping
        if sweeping is not None:
            await sweeping
        await db.pool.wait(timeout=5)
        assert _backends(cluster.url) == 10
        results = await asyncio.gather(*(db.get_run_metadata(run.run_id) for _ in range(30)))
        assert results == [run] * 30
        print(f"\nfirst operation after terminating 10 pooled connections: {first * 1000:.1f} ms")


async def test_a_connection_lost_mid_transaction_fails_that_call_only(
    cluster: LocalDatabase,
) -> None:
    async with Database(cluster.url, min_size=1, max_size=2) as db:
        with pytest.raises(psycopg.OperationalError):
            async with db.transaction() as tx:
                await tx.create_run_metadata("full", 1)
                _terminate_all(cluster.url)
                await tx.create_run_metadata("full", 2)
        assert await db.create_run_metadata("incremental", 3) is not None
    assert scalar(cluster.url, "SELECT array_agg(expected_workers) FROM run_metadata") == [3]


# -- server unreachable ---------------------------------------------------------


async def test_a_stopped_server_is_database_unavailable_within_the_timeout_then_recovers(
    cluster: LocalDatabase,
) -> None:
    port = cluster.cluster.port
    async with Database(cluster.url, min_size=3, max_size=5, timeout=2) as db:
        run = await db.create_run_metadata("full", 1)
        cluster.cluster.stop()
        try:
            started = time.monotonic()
            with pytest.raises(DatabaseUnavailable) as raised:
                await db.get_run_metadata(run.run_id)
            failed_after = time.monotonic() - started
        finally:
            cluster.cluster.start()
        started = time.monotonic()
        assert await db.get_run_metadata(run.run_id) == run
        recovered_after = time.monotonic() - started
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert isinstance(raised.value, PoolTimeout)
    assert isinstance(raised.value.__cause__, psycopg.OperationalError)
    assert failed_after <= 2 + 1, f"DatabaseUnavailable after {failed_after:.2f} s"  # + slack
    assert recovered_after < 2
    print(
        f"\nstopped server: DatabaseUnavailable after {failed_after:.2f} s (timeout 2 s); "
        f"first operation after the restart took {recovered_after * 1000:.0f} ms"
    )


async def test_a_server_that_never_answers_is_database_unavailable_within_the_timeout() -> None:
    # A loopback socket that accepts TCP connections but never speaks: libpq waits for the
    # server's reply to the startup packet, as with a host that drops packets (this test
    # only ever talks to 127.0.0.1).
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        db = Database(f"postgresql://nobody@127.0.0.1:{port}/x", min_size=1, timeout=1.5)
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable) as raised:
            await db.get_run_metadata(uuid.uuid4())
        elapsed = time.monotonic() - started
        await db.close()
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert raised.value.__cause__ is not None
    assert elapsed <= 1.5 + 1  # the timeout, plus slack for a loaded machine


# -- statement timeout ----------------------------------------------------------


@pytest.mark.parametrize("how", ["seconds", "timedelta", "environment"])
async def test_statement_timeout_cancels_with_57014_and_leaves_the_connection_usable(
    cluster: LocalDatabase, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    kwargs: dict[str, Any] = {}
    if how == "seconds":
        kwargs["statement_timeout"] = 0.2
    elif how == "timedelta":
        kwargs["statement_timeout"] = timedelta(milliseconds=200)
    else:
        monkeypatch.setenv("PG_STATEMENT_TIMEOUT_MS", "200")
    async with Database(cluster.url, min_size=1, max_size=1, **kwargs) as db:
        run = await db.create_run_metadata("full", 1)
        with psycopg.connect(cluster.url) as locker:  # holds the lock until rollback
            locker.execute("LOCK TABLE run_metadata IN ACCESS EXCLUSIVE MODE")
            calls: list[Callable[[], Awaitable[object]]] = [
                lambda: db.get_run_metadata(run.run_id),  # a read
                lambda: db.create_run_metadata("full", 2),  # a write
            ]
            for blocked in calls:
                started = time.monotonic()
                with pytest.raises(psycopg.errors.QueryCanceled) as raised:
                    await blocked()
                assert raised.value.sqlstate == "57014"
                assert time.monotonic() - started < 2
            locker.rollback()
        # The same (only) connection works, and no session setting was left on it.
        assert await db.get_run_metadata(run.run_id) == run
        assert await db.upsert_diamonds([diamond("a"), diamond("b")]) == 2
        async with db.pool.connection() as conn:
            cursor = await conn.execute("SHOW statement_timeout")
            assert await cursor.fetchone() == ("0",)
    assert scalar(cluster.url, "SELECT count(*) FROM run_metadata") == 1


async def test_statement_timeout_bounds_statements_inside_transactions(
    cluster: LocalDatabase,
) -> None:
    async with Database(cluster.url, min_size=1, max_size=1, statement_timeout=0.2) as db:
        with pytest.raises(psycopg.errors.QueryCanceled):
            async with db.transaction() as tx:
                await tx.create_run_metadata("full", 1)
                await tx.connection.execute("SELECT pg_sleep(3)")
        assert await db.create_run_metadata("full", 2) is not None
    assert scalar(cluster.url, "SELECT array_agg(expected_workers) FROM run_metadata") == [2]


# -- batch atomicity ------------------------------------------------------------


async def _no_sql_sent(url: str, call: Callable[[Database], Awaitable[object]]) -> ValidationError:
    events: list[QueryEvent] = []
    async with Database(url, min_size=1, on_query=events.append) as db:
        with pytest.raises(ValidationError) as raised:
            await call(db)
    assert events == []
    return raised.value


async def test_a_bad_row_in_a_diamond_batch_is_named_before_anything_is_sent(
    cluster: LocalDatabase,
) -> None:
    rows = [diamond(f"s{i}") for i in range(5)]
    rows[2] = diamond("s2", rating=11)
    error = await _no_sql_sent(cluster.url, lambda db: db.upsert_diamonds(rows))
    assert "[2]" in error.argument
    assert "s2" in str(error)
    rows[2] = diamond("s2", certificate_number="A\x00B")
    error = await _no_sql_sent(cluster.url, lambda db: db.upsert_diamonds(rows))
    assert "[2]" in error.argument
    assert "certificate_number" in str(error)
    assert scalar(cluster.url, "SELECT count(*) FROM diamonds") == 0


async def test_a_bad_row_in_a_raw_batch_is_named_before_anything_is_sent(
    cluster: LocalDatabase,
) -> None:
    run_id = uuid.uuid4()
    rows = [RawDiamondInput(f"r{i}", f"o{i}", {"i": i}) for i in range(5)]
    rows[3] = RawDiamondInput("r3", "o3", {"note": "bad\x00byte"})
    error = await _no_sql_sent(cluster.url, lambda db: db.upsert_raw_diamonds(run_id, rows))
    assert "[3]" in error.argument
    assert "note" in str(error)
    assert scalar(cluster.url, "SELECT count(*) FROM raw_diamonds_nivoda") == 0


async def test_a_row_the_database_rejects_mid_batch_writes_nothing(
    cluster: LocalDatabase,
) -> None:
    """What Python cannot check (here a trigger standing in for any server-side rule)."""
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION reject_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF NEW.supplier_stone_id = 'poison' THEN RAISE EXCEPTION 'rejected'; END IF; "
            "RETURN NEW; END $$"
        )
        for table in ("diamonds", "raw_diamonds_nivoda"):
            conn.execute(
                f"CREATE TRIGGER reject_poison BEFORE INSERT OR UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION reject_poison()"
            )
    try:
        async with Database(cluster.url, min_size=1) as db:
            diamonds = [diamond(f"s{i}") for i in range(50)]
            diamonds[25] = diamond("poison")
            with pytest.raises(psycopg.errors.RaiseException):
                await db.upsert_diamonds(diamonds)
            raw = [RawDiamondInput(f"r{i}", f"o{i}", {"i": i}) for i in range(50)]
            raw[25] = RawDiamondInput("poison", "o", {})
            with pytest.raises(psycopg.errors.RaiseException):
                await db.upsert_raw_diamonds(uuid.uuid4(), raw)
        assert scalar(cluster.url, "SELECT count(*) FROM diamonds") == 0
        assert scalar(cluster.url, "SELECT count(*) FROM raw_diamonds_nivoda") == 0
    finally:
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            conn.execute("DROP FUNCTION reject_poison() CASCADE")

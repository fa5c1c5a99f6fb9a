"""The error log: grouping by fingerprint, concurrent counting, never raising, listing."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import psycopg
import pytest
from helpers import fetch, fetch_dicts, scalar

from diamond_db import Database, ValidationError
from diamond_db.operations.error_log import normalise_message
from diamond_db.testing import reset_database


def execute(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode())


def test_numbers_ids_and_quoted_values_are_normalised() -> None:
    assert normalise_message("order 42 for 'alice' failed after 1.5 s") == (
        "order <n> for '?' failed after <n> s"
    )
    assert (
        normalise_message(
            'diamond 5b0c6a1e-8d4f-4c2b-9a7e-1f2d3c4b5a69 at "https://x/1"'
            " (0xdeadbeef, cafe1234beef)"
        )
        == 'diamond <uuid> at "?" (<hex>, <hex>)'
    )
    assert normalise_message("worker-7 timed out") == normalise_message("worker-12 timed out")
    assert normalise_message("deadline exceeded") == "deadline exceeded"


async def test_like_errors_form_one_group_with_the_latest_details(
    diamond_db: Database, diamond_db_url: str
) -> None:
    run_id = uuid4()
    logged = await diamond_db.log_error(
        "consolidator", "stone 17 rejected: 'abc'", error=ValueError("x"), context={"stone": 17}
    )
    assert logged
    assert await diamond_db.log_error(
        "consolidator", "stone 18 rejected: 'xyz'", context={"stone": 18}, run_id=run_id
    )
    assert await diamond_db.log_error("consolidator", "supplier down")
    assert await diamond_db.log_error("worker", "stone 17 rejected: 'abc'")
    groups = fetch_dicts(diamond_db_url, "SELECT * FROM error_log ORDER BY service, pattern")
    assert [(g["service"], g["pattern"], g["occurrences"]) for g in groups] == [
        ("consolidator", "stone <n> rejected: '?'", 2),
        ("consolidator", "supplier down", 1),
        ("worker", "stone <n> rejected: '?'", 1),
    ]
    latest = groups[0]
    assert latest["message"] == "stone 18 rejected: 'xyz'"
    assert (latest["context"], latest["run_id"], latest["error_type"]) == (
        {"stone": 18},
        run_id,
        None,
    )
    assert latest["first_seen"] <= latest["last_seen"]
    page = await diamond_db.list_errors(service="consolidator")
    assert next(g.pattern for g in page.items) == "supplier down"  # most recently seen first
    [from_run] = (await diamond_db.list_errors(run_id=run_id)).items
    assert from_run.occurrences == 2


async def test_an_error_adds_its_type_and_traceback(diamond_db: Database) -> None:
    stones: dict[str, int] = {}
    try:
        stones["missing"]
    except KeyError as error:
        await diamond_db.log_error("api", "lookup failed", error=error)
    [group] = (await diamond_db.list_errors()).items
    assert group.error_type == "KeyError"
    assert group.stack is not None
    assert "test_an_error_adds_its_type_and_traceback" in group.stack


async def test_10000_concurrent_identical_errors_are_one_group_counted_10000(
    diamond_db_url: str,
) -> None:
    reset_database(diamond_db_url)
    # Four processes' worth of pools: their writes race in the database too.
    dbs = [Database(diamond_db_url, min_size=2, max_size=5) for _ in range(4)]
    for db in dbs:
        await db.open()
    try:
        stored = await asyncio.gather(
            *(dbs[n % 4].log_error("ingest", f"page {n} timed out") for n in range(10_000))
        )
    finally:
        for db in dbs:
            await db.close()
    assert all(stored)
    assert fetch(diamond_db_url, "SELECT pattern, occurrences FROM error_log") == [
        ("page <n> timed out", 10_000)
    ]


async def test_racing_writers_of_one_group_lose_no_count(diamond_db_url: str) -> None:
    reset_database(diamond_db_url)

    async def service(n: int) -> None:
        async with Database(diamond_db_url, min_size=1, max_size=1) as db:
            for k in range(25):
                assert await db.log_error("api", f"request {n}-{k} failed")

    await asyncio.gather(*(service(n) for n in range(8)))
    assert scalar(diamond_db_url, "SELECT occurrences FROM error_log") == 200


async def test_log_error_never_raises_and_logs_its_own_failure_without_values(
    diamond_db: Database, diamond_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="diamond_db")
    assert not await diamond_db.log_error("", "secret-token-123 leaked")  # invalid service
    assert not await diamond_db.log_error("api", "x", run_id="not-a-uuid")
    execute(diamond_db_url, "ALTER TABLE error_log RENAME TO error_log_away")
    try:
        assert not await diamond_db.log_error("api", "password=hunter2 rejected")
    finally:
        execute(diamond_db_url, "ALTER TABLE error_log_away RENAME TO error_log")
    assert len(caplog.records) == 3
    assert "secret" not in caplog.text
    assert "hunter2" not in caplog.text
    assert "UndefinedTable" in caplog.text


async def test_a_cancelled_caller_gets_its_cancellation_and_the_error_is_still_counted(
    diamond_db_url: str,
) -> None:
    reset_database(diamond_db_url)
    async with Database(diamond_db_url, min_size=1, max_size=1) as db:
        async with db.transaction():  # holds the only connection: log_error waits for it
            task = asyncio.create_task(db.log_error("api", "upstream 1 failed"))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert await db.log_error("api", "upstream 2 failed")  # written after the first
    assert scalar(diamond_db_url, "SELECT occurrences FROM error_log") == 2


async def test_messages_nul_bytes_and_odd_context_are_stored_not_refused(
    diamond_db: Database,
) -> None:
    assert await diamond_db.log_error(
        "api",
        "bad\x00byte",
        context={"when": datetime(2026, 1, 1, tzinfo=UTC), "nan": float("nan"), "nul": "a\x00b"},
    )
    [group] = (await diamond_db.list_errors()).items
    assert group.message == "bad\\x00byte"
    assert group.context == {"when": "2026-01-01 00:00:00+00:00", "nan": "NaN", "nul": "a\\x00b"}


async def test_list_errors_pages_and_filters_and_purge_keeps_recent_groups(
    diamond_db: Database, diamond_db_url: str
) -> None:
    for n in range(5):
        await diamond_db.log_error("worker", f"kind {chr(97 + n)} failed")
    await diamond_db.log_error("api", "slow")
    fetch(
        diamond_db_url,
        "UPDATE error_log SET first_seen = now() - interval '3 days',"
        " last_seen = now() - interval '2 days' WHERE pattern = 'kind a failed' RETURNING 1",
    )
    first = await diamond_db.list_errors(service="worker", limit=2)
    assert len(first.items) == 2
    assert first.next_cursor is not None
    second = await diamond_db.list_errors(service="worker", limit=2, cursor=first.next_cursor)
    third = await diamond_db.list_errors(service="worker", limit=2, cursor=second.next_cursor)
    assert third.next_cursor is None
    seen = [g.pattern for g in first.items + second.items + third.items]
    assert len(seen) == 5
    assert seen[-1] == "kind a failed"
    day_ago = datetime.now(UTC) - timedelta(days=1)
    recent = await diamond_db.list_errors(since=day_ago)
    assert "kind a failed" not in [g.pattern for g in recent.items]
    old = await diamond_db.list_errors(until=day_ago)
    assert [g.pattern for g in old.items] == ["kind a failed"]
    assert await diamond_db.error_services() == ["api", "worker"]
    assert await diamond_db.purge_errors(timedelta(days=1), service="api") == 0
    assert await diamond_db.purge_errors(timedelta(days=1)) == 1
    assert scalar(diamond_db_url, "SELECT count(*) FROM error_log") == 5
    with pytest.raises(ValidationError):
        await diamond_db.list_errors(cursor="garbage!")


def test_one_database_logs_across_event_loops(diamond_db_url: str) -> None:
    """A process-wide Database (as the module-level functions use) outlives asyncio.run calls."""
    reset_database(diamond_db_url)
    db = Database(diamond_db_url, min_size=1)

    async def once(n: int) -> bool:
        try:
            return await db.log_error("cron", f"job {n} failed")
        finally:
            await db.close()

    assert [asyncio.run(once(n)) for n in range(3)] == [True, True, True]
    assert scalar(diamond_db_url, "SELECT occurrences FROM error_log") == 3

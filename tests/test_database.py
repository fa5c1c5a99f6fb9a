"""Database: pool lifecycle, transactions, settings, errors, observability, the default database."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from helpers import scalar
from psycopg_pool import PoolTimeout

import diamond_db
from diamond_db import Database, DatabaseUnavailable, QueryEvent, ValidationError
from diamond_db._server import _free_port
from diamond_db.config import resolve_settings, settings_from_env
from diamond_db.testing import reset_database

RUNS = "SELECT count(*) FROM run_metadata"


# -- lifecycle ----------------------------------------------------------------


async def test_context_manager_opens_and_closes_the_pool(diamond_db_url: str) -> None:
    db = Database(diamond_db_url, min_size=1)
    async with db:
        assert not db.pool.closed
        pool = db.pool
        assert await db.get_run_metadata(uuid.uuid4()) is None
    assert pool.closed


async def test_operations_open_the_pool_themselves_and_reopen_after_close(
    diamond_db_url: str,
) -> None:
    reset_database(diamond_db_url)
    db = Database(diamond_db_url, min_size=1)
    run = await db.create_run_metadata("full", 2)
    await db.close()
    assert await db.get_run_metadata(run.run_id) == run
    await db.close()


async def test_connections_are_autocommit_and_do_not_prepare_by_default(
    diamond_db: Database,
) -> None:
    async with diamond_db.pool.connection() as conn:
        assert conn.autocommit
        assert conn.prepare_threshold is None


async def test_prepare_threshold_is_passed_to_connections(diamond_db_url: str) -> None:
    db = Database(diamond_db_url, min_size=1, prepare_threshold=3)
    async with db, db.pool.connection() as conn:
        assert conn.prepare_threshold == 3


# -- transactions -------------------------------------------------------------


async def test_transaction_commits_together(diamond_db: Database, diamond_db_url: str) -> None:
    async with diamond_db.transaction() as tx:
        first = await tx.create_run_metadata("full", 1)
        await tx.create_run_metadata("incremental", 1)
        assert scalar(diamond_db_url, RUNS) == 0  # nothing visible before commit
        assert await tx.get_run_metadata(first.run_id) == first  # but visible inside
    assert scalar(diamond_db_url, RUNS) == 2


async def test_transaction_rolls_back_on_any_exception(
    diamond_db: Database, diamond_db_url: str
) -> None:
    with pytest.raises(RuntimeError):
        async with diamond_db.transaction() as tx:
            await tx.create_run_metadata("full", 1)
            raise RuntimeError("boom")
    assert scalar(diamond_db_url, RUNS) == 0


async def test_a_failed_statement_rolls_back_the_whole_transaction(
    diamond_db: Database, diamond_db_url: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as raised:
        async with diamond_db.transaction() as tx:
            await tx.create_run_metadata("full", 1)
            async with tx.connection.cursor() as cur:
                await cur.execute(
                    "INSERT INTO run_metadata (run_type, expected_workers) VALUES ('full', -5)"
                )
    assert raised.value.sqlstate == "23514"
    assert scalar(diamond_db_url, RUNS) == 0


async def test_module_level_transaction_uses_the_default_database(
    diamond_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    reset_database(diamond_db_url)
    monkeypatch.setenv("DATABASE_URL", diamond_db_url)
    try:
        async with diamond_db.transaction() as tx:
            run = await tx.create_run_metadata("full", 4)
        assert await diamond_db.get_run_metadata(run.run_id) == run
        assert diamond_db.get_pool() is diamond_db.get_pool()
    finally:
        await diamond_db.close_pool()
    assert scalar(diamond_db_url, RUNS) == 1


async def test_missing_database_url_is_a_clear_error_when_first_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        diamond_db.get_pool()
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        await diamond_db.get_run_metadata(uuid.uuid4())


# -- validation before SQL ----------------------------------------------------


async def test_bad_arguments_raise_before_any_sql(diamond_db_url: str) -> None:
    events: list[QueryEvent] = []
    async with Database(diamond_db_url, min_size=1, on_query=events.append) as db:
        with pytest.raises(ValidationError, match="run_id"):
            await db.get_run_metadata("not-a-uuid")
        with pytest.raises(ValidationError, match="run_type"):
            await db.create_run_metadata("weekly", 1)  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="expected_workers"):
            await db.create_run_metadata("full", -1)
        with pytest.raises(ValidationError, match="expected_workers"):
            await db.create_run_metadata("full", True)
    assert events == []


def test_validation_error_is_a_value_error_and_names_the_argument() -> None:
    error = ValidationError("carat_min", "must be a number")
    assert isinstance(error, ValueError)
    assert isinstance(error, diamond_db.DiamondDBError)
    assert error.argument == "carat_min"
    assert isinstance(diamond_db.NotFoundError("x"), LookupError)


# -- settings -----------------------------------------------------------------


def test_settings_defaults_env_and_arguments() -> None:
    defaults = resolve_settings("postgresql://h/db", env={})
    assert (defaults.min_size, defaults.max_size, defaults.max_idle, defaults.timeout) == (
        2,
        15,
        30.0,
        5.0,
    )
    assert defaults.statement_timeout is None
    assert defaults.prepare_threshold is None
    assert defaults.slow_query_threshold == 0.5
    env = {
        "PG_POOL_MIN": "1",
        "PG_POOL_MAX": "7",
        "PG_IDLE_TIMEOUT_MS": "1000",
        "PG_CONN_TIMEOUT_MS": "2500",
        "PG_STATEMENT_TIMEOUT_MS": "1500",
        "PG_PREPARE_THRESHOLD": "5",
        "DIAMOND_DB_SLOW_QUERY_MS": "100",
    }
    from_env = resolve_settings("postgresql://h/db", env=env)
    assert (from_env.min_size, from_env.max_size, from_env.max_idle, from_env.timeout) == (
        1,
        7,
        1.0,
        2.5,
    )
    assert (from_env.statement_timeout, from_env.prepare_threshold) == (1.5, 5)
    assert from_env.slow_query_threshold == 0.1
    given = resolve_settings(
        "postgresql://h/db",
        env=env,
        max_size=3,
        statement_timeout=timedelta(seconds=2),
        prepare_threshold=None,
        slow_query_threshold=1,
    )
    assert (given.max_size, given.statement_timeout, given.prepare_threshold) == (3, 2.0, None)
    assert resolve_settings("x", env={"PG_PREPARE_THRESHOLD": "none"}).prepare_threshold is None


@pytest.mark.parametrize(
    ("kwargs", "env", "argument"),
    [
        ({"min_size": 5, "max_size": 2}, {}, "max_size"),
        ({"timeout": 0}, {}, "timeout"),
        ({"statement_timeout": -1}, {}, "statement_timeout"),
        ({"statement_timeout": float("nan")}, {}, "statement_timeout"),
        ({"prepare_threshold": -1}, {}, "prepare_threshold"),
        ({}, {"PG_POOL_MAX": "many"}, "PG_POOL_MAX"),
        ({}, {"PG_STATEMENT_TIMEOUT_MS": "soon"}, "PG_STATEMENT_TIMEOUT_MS"),
    ],
)
def test_bad_settings_name_the_setting(
    kwargs: dict[str, Any], env: dict[str, str], argument: str
) -> None:
    with pytest.raises(ValidationError) as raised:
        resolve_settings("postgresql://h/db", env=env, **kwargs)
    assert raised.value.argument == argument


def test_default_database_reads_urls_from_the_environment() -> None:
    s = settings_from_env(
        {"DATABASE_URL": "postgresql://p/db", "DATABASE_READ_URL": "postgresql://r/db"}
    )
    assert (s.url, s.read_url) == ("postgresql://p/db", "postgresql://r/db")


# -- failures -----------------------------------------------------------------


async def test_statement_timeout_cancels_and_leaves_the_connection_usable(
    diamond_db_url: str,
) -> None:
    async with Database(diamond_db_url, min_size=1, max_size=1, statement_timeout=0.2) as db:
        async with db.transaction() as tx:
            setting = await tx.connection.execute("SHOW statement_timeout")
            assert await setting.fetchone() == ("200ms",)
        with pytest.raises(psycopg.errors.QueryCanceled) as raised:
            async with db.transaction() as tx:
                await tx.connection.execute("SELECT pg_sleep(5)")
        assert raised.value.sqlstate == "57014"
        assert await db.get_run_metadata(uuid.uuid4()) is None  # same (only) connection


async def test_unreachable_server_is_database_unavailable_within_the_timeout() -> None:
    port = _free_port()
    db = Database(f"postgresql://nobody@127.0.0.1:{port}/x", min_size=0, timeout=1)
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as raised:
        await db.get_run_metadata(uuid.uuid4())
    elapsed = time.monotonic() - started
    await db.close()
    assert f"127.0.0.1:{port}" in str(raised.value)
    assert isinstance(raised.value, PoolTimeout)
    assert isinstance(raised.value.__cause__, psycopg.OperationalError)
    assert elapsed < 1 + 3


async def test_an_exhausted_pool_is_a_pool_timeout(diamond_db_url: str) -> None:
    db = Database(diamond_db_url, min_size=1, max_size=1, timeout=0.3)
    async with db, db.transaction():
        with pytest.raises(PoolTimeout) as raised:
            await db.get_run_metadata(uuid.uuid4())
    assert not isinstance(raised.value, DatabaseUnavailable)


# -- observability ------------------------------------------------------------


async def test_on_query_and_logs_carry_name_duration_rows_but_never_parameters(
    diamond_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reset_database(diamond_db_url)
    events: list[QueryEvent] = []
    secret = uuid.uuid4()
    caplog.set_level(logging.DEBUG, logger="diamond_db")
    async with Database(diamond_db_url, min_size=1, on_query=events.append) as db:
        run = await db.create_run_metadata("full", 3)
        await db.get_run_metadata(secret)
    assert [(e.name, e.rows, e.error) for e in events] == [
        ("create_run_metadata", 1, None),
        ("get_run_metadata", 0, None),
    ]
    assert all(e.duration > 0 for e in events)
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "diamond_db")
    assert "get_run_metadata" in logged
    assert str(secret) not in logged
    assert str(run.run_id) not in logged


async def test_slow_statements_warn_and_errors_are_reported(
    diamond_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[QueryEvent] = []
    caplog.set_level(logging.WARNING, logger="diamond_db")
    async with Database(
        diamond_db_url, min_size=1, slow_query_threshold=0, on_query=events.append
    ) as db:
        await db.get_run_metadata(uuid.uuid4())
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            async with db.transaction() as tx:
                with pytest.raises(psycopg.errors.DivisionByZero):
                    await tx.connection.execute("SELECT 1 / 0")
                await tx.get_run_metadata(uuid.uuid4())  # the transaction is aborted
    assert any("slow statement get_run_metadata" in r.getMessage() for r in caplog.records)
    assert events[-1].name == "get_run_metadata"
    assert isinstance(events[-1].error, psycopg.errors.InFailedSqlTransaction)


async def test_a_failing_on_query_hook_does_not_fail_the_operation(diamond_db_url: str) -> None:
    def hook(event: QueryEvent) -> None:
        raise RuntimeError("metrics are down")

    async with Database(diamond_db_url, min_size=1, on_query=hook) as db:
        assert await db.get_run_metadata(uuid.uuid4()) is None

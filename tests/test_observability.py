"""Query logging and on_query over the operations the CLI and the demo use."""

from __future__ import annotations

import logging
from decimal import Decimal

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from diamond_db import Database, QueryEvent, hash_api_key
from diamond_db._server import Server
from diamond_db.synthetic import synthetic_diamonds
from diamond_db.testing import reset_database


async def test_the_environment_threshold_applies_when_none_is_passed(
    diamond_db_url: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger="diamond_db")
    monkeypatch.setenv("DIAMOND_DB_SLOW_QUERY_MS", "0")
    async with Database(diamond_db_url, min_size=1) as db:
        await db.get_active_pricing_rules()
    assert any("slow statement get_active_pricing_rules" in r.getMessage() for r in caplog.records)
    caplog.clear()
    async with Database(diamond_db_url, min_size=1, slow_query_threshold=60) as db:
        await db.get_active_pricing_rules()  # an explicit threshold wins over the variable
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_bulk_composed_and_transactional_statements_are_observed_without_values(
    diamond_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    reset_database(diamond_db_url)
    caplog.set_level(logging.DEBUG, logger="diamond_db")
    events: list[QueryEvent] = []
    secret_key = "customer-4711-order-key"
    async with Database(diamond_db_url, min_size=1, on_query=events.append) as db:
        assert await db.upsert_diamonds(list(synthetic_diamonds(30, seed=3))) == 30
        page = await db.search_diamonds(carat_min=Decimal("0.2"), limit=10)
        target = page.items[0]
        await db.create_purchase_history(
            diamond_id=target.id,
            supplier=target.supplier,
            offer_id=target.offer_id,
            idempotency_key=secret_key,
            reference="Jane Customer",
        )
        await db.validate_api_key(hash_api_key("raw-secret-api-key"))
    names = [e.name for e in events]
    assert names[:2] == ["upsert_diamonds", "search_diamonds"]
    assert events[0].rows == 30
    assert events[1].rows >= 10  # the statement's rows (the page may fetch one extra)
    assert all(e.error is None and e.duration > 0 for e in events)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    for name in names:
        assert name in logged
    for secret in (secret_key, "Jane Customer", hash_api_key("raw-secret-api-key"), str(target.id)):
        assert secret not in logged


async def test_a_failed_bootstrap_is_reported_with_its_error(diamond_db_server: Server) -> None:
    with diamond_db_server.database(bootstrap=False) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(
                sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on").format(
                    sql.Identifier(str(conninfo_to_dict(url)["dbname"]))
                )
            )
        events: list[QueryEvent] = []
        db = Database(url, min_size=1, on_query=events.append)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            await db.bootstrap()
        assert [e.name for e in events] == ["bootstrap"]
        assert isinstance(events[0].error, psycopg.errors.ReadOnlySqlTransaction)

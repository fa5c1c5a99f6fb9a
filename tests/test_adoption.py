"""`diamond-db migrate` adopting a database the TypeScript package created, through the runner.

The database is built and filled as the TypeScript package did (tests/ts_era.py: its schema,
100,000 diamonds, raw rows, runs, worker runs, rules, keys, holds and purchases, plus rows
written by hand with NULL flags), then upgraded by the real runner; data, catalog and the
library's operations are checked afterwards.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest
import ts_era
from catalog import assert_same_catalog, catalog
from helpers import diamond, fetch, scalar

from diamond_db import Database, MigrationError, RawDiamondInput
from diamond_db._resources import data_dir
from diamond_db._server import Server
from diamond_db.migrations import load_migrations

SHIPPED = data_dir("sql") / "migrations"
# 0004 makes the TypeScript raw table a partition: its CHECKs are raw_diamonds' (renamed
# raw_diamonds_*), validated through the parent, so violations are reported there.
PARTITIONED = {"raw_diamonds_nivoda": "raw_diamonds"}


@pytest.fixture(scope="module")
def bootstrapped(diamond_db_server: Server) -> Iterator[list[Any]]:
    """The catalog sql/bootstrap.sql builds: what an adopted database must end up with."""
    with diamond_db_server.database("diamond_db_adopt_ref") as url:
        yield catalog(url)


def _ts_database(server: Server, prefix: str) -> Iterator[str]:
    with server.database(prefix, bootstrap=False) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            ts_era.create_ts_schema(conn)
        yield url


@pytest.fixture
def ts_url(diamond_db_server: Server) -> Iterator[str]:
    yield from _ts_database(diamond_db_server, "diamond_db_adopt")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "diamond_db", *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={k: v for k, v in os.environ.items() if k != "DATABASE_URL"} | {"COLUMNS": "200"},
    )


async def test_a_typescript_era_database_is_adopted_without_losing_a_row(
    ts_url: str, bootstrapped: list[Any]
) -> None:
    with psycopg.connect(ts_url) as conn:
        counts = ts_era.fill_ts_data(conn, diamonds=100_000)
        ts_era.insert_legacy_nulls(conn)
        conn.commit()
        before = ts_era.snapshot(conn)
        rows_before = ts_era.row_counts(conn)
    assert counts["diamonds"] == 100_000

    plan = _cli("migrate", "--dry-run", "--database-url", ts_url)
    assert plan.returncode == 0, plan.stderr
    assert "by adopting this TypeScript-era database" in plan.stdout
    assert "DROP INDEX CONCURRENTLY IF EXISTS idx_diamonds_search" in plan.stdout
    assert "-- estimated total: ~" in plan.stdout
    assert "locks: ACCESS EXCLUSIVE" in plan.stdout
    assert scalar(ts_url, "SELECT to_regclass('schema_migrations') IS NULL")  # nothing applied

    started = datetime.now(UTC)
    applied = await Database(ts_url).migrate()
    finished = datetime.now(UTC)
    assert [s.version for s in applied] == [m.version for m in load_migrations(SHIPPED)]

    assert_same_catalog(bootstrapped, catalog(ts_url))
    with psycopg.connect(ts_url) as conn:
        after = ts_era.snapshot(conn)
        assert ts_era.row_counts(conn) == rows_before
    assert ts_era.compare_snapshots(before, after, adopted_between=(started, finished)) == []
    assert_raw_rows_partitioned(ts_url, rows_before["raw_diamonds_nivoda"])
    how = scalar(ts_url, "SELECT applied_with FROM schema_migrations WHERE version = '0001'")
    assert "adopted in place by adopt/0001_from_typescript.sql" in how
    assert {s.state for s in await Database(ts_url).migration_status()} == {"applied"}
    assert await Database(ts_url).unvalidated_constraints() == []
    await _the_library_works_on(ts_url)


def assert_raw_rows_partitioned(url: str, raw_rows: int) -> None:
    """The TypeScript raw table is now raw_diamonds' 'nivoda' partition, holding every row."""
    assert scalar(url, "SELECT relkind FROM pg_class WHERE relname = 'raw_diamonds'") == "p"
    assert fetch(
        url,
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits AS i"
        " JOIN pg_class AS c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'raw_diamonds'::regclass ORDER BY 1",
    ) == [
        ("raw_diamonds_default", "DEFAULT"),
        ("raw_diamonds_nivoda", "FOR VALUES IN ('nivoda')"),
    ]
    assert fetch(
        url, "SELECT tableoid::regclass::text, supplier, count(*) FROM raw_diamonds GROUP BY 1, 2"
    ) == [("raw_diamonds_nivoda", "nivoda", raw_rows)]


async def _the_library_works_on(url: str) -> None:
    """The operation surface on the adopted data (reads of TypeScript rows, then writes)."""
    async with Database(url, min_size=1) as db:
        page = await db.search_diamonds(shape="ROUND", sort_by="supplier_price_cents", limit=5)
        assert page.items
        assert page.total is not None
        assert page.total > 0
        stone = page.items[0]
        assert await db.get_diamond_by_offer_id(stone.offer_id) == stone
        assert await db.upsert_diamonds([diamond("adopted-1"), diamond("adopted-2")]) == 2
        assert await db.match_pricing_rule(Decimal("1.5"), "ROUND", False, "nivoda") is not None
        hold = await db.place_hold(
            diamond_id=stone.id,
            supplier=stone.supplier,
            offer_id=stone.offer_id,
            supplier_hold_id="adopted-hold",
        )
        assert hold is not None
        assert await db.release_hold(diamond_id=stone.id, supplier_hold_id="adopted-hold")
        purchase = await db.create_purchase_history(
            diamond_id=stone.id,
            supplier=stone.supplier,
            offer_id=stone.offer_id,
            idempotency_key="adopted-purchase",
        )
        assert purchase.status == "pending"
        run = await db.create_run_metadata("full", 1)
        await db.upsert_raw_diamonds(
            run.run_id, [RawDiamondInput("adopted-raw", "adopted-offer", {"p": 1})]
        )
        claimed = await db.claim_unconsolidated_raw_diamonds(10, "adoption-test")
        assert claimed
        await db.mark_as_consolidated([r.id for r in claimed], claimed_by="adoption-test")
        # A second feed lands in the default partition, next to the adopted rows.
        other = [RawDiamondInput("adopted-raw", "other-offer", {"p": 2})]
        assert await db.upsert_raw_diamonds(run.run_id, other, supplier="second-feed") == 1
        assert await db.purge_raw_payloads("second-feed") == 1
        assert await db.increment_completed_workers(run.run_id) is not None
    rows = fetch(url, "SELECT status FROM hold_history WHERE diamond_id = %s", stone.id)
    assert ("released",) in rows


async def test_violating_rows_are_reported_then_validated_once_fixed(
    ts_url: str, bootstrapped: list[Any]
) -> None:
    with psycopg.connect(ts_url) as conn:
        ts_era.fill_ts_data(conn, diamonds=2_000)
        violations = ts_era.insert_violations(conn)
        conn.commit()

    done = _cli("migrate", "--database-url", ts_url)
    assert done.returncode == 1, done.stdout + done.stderr
    report = done.stderr
    assert report.startswith("error: ")
    assert "could not be validated" in report.splitlines()[0]
    for violation in violations:  # table, id, column: each named in the report
        table = PARTITIONED.get(violation.table, violation.table)
        named = [ln for ln in report.splitlines() if ln.strip().startswith(f"{table}.")]
        assert any(violation.id in ln and f"{violation.column}=" in ln for ln in named), (
            violation,
            report,
        )
    status = _cli("migrate", "--status", "--database-url", ts_url)
    assert status.returncode == 1
    assert "not yet validated" in status.stdout
    waiting = await Database(ts_url).unvalidated_constraints()
    assert {c.constraint_name for c in waiting} == {
        ts_era.VIOLATED_CONSTRAINTS[(v.table, v.column)].replace(
            "raw_diamonds_nivoda_", "raw_diamonds_"
        )
        for v in violations
    }

    with psycopg.connect(ts_url, autocommit=True) as conn:  # the operator fixes the rows
        for violation in violations:
            key = "run_id" if violation.table == "run_metadata" else "id"
            conn.execute(
                psycopg.sql.SQL("DELETE FROM {} WHERE {}::text = %s").format(
                    psycopg.sql.Identifier(violation.table), psycopg.sql.Identifier(key)
                ),
                (violation.id,),
            )
    fixed = _cli("migrate", "--database-url", ts_url)
    assert fixed.returncode == 0, fixed.stderr
    assert _cli("migrate", "--status", "--database-url", ts_url).returncode == 0
    assert_same_catalog(bootstrapped, catalog(ts_url))


async def test_a_foreign_schema_is_never_adopted(diamond_db_server: Server) -> None:
    with diamond_db_server.database("diamond_db_foreign", bootstrap=False) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE invoices (id INT PRIMARY KEY)")
        with pytest.raises(MigrationError, match="does not know"):
            await Database(url).migrate()
        assert fetch(url, "SELECT to_regclass('diamonds')") == [(None,)]

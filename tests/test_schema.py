"""sql/bootstrap.sql: idempotency, the seeded rule, every CHECK / unique / NOT NULL constraint."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from diamond_db._resources import bootstrap_sql
from diamond_db._server import Server
from diamond_db.testing import reset_database

DIAMOND: dict[str, Any] = {
    "supplier_stone_id": "S1",
    "offer_id": "O1",
    "shape": "ROUND",
    "carats": 1,
    "supplier_price_cents": 100,
    "price_per_carat_cents": 100,
}


@pytest.fixture
def conn(diamond_db_url: str) -> Iterator[psycopg.Connection[Any]]:
    reset_database(diamond_db_url)
    with psycopg.connect(diamond_db_url, autocommit=True) as conn:
        yield conn


def _catalog(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    """Every column, constraint and index of the public schema."""
    return conn.execute(
        """
        SELECT 'column', table_name || '.' || column_name || ' ' || data_type
        FROM information_schema.columns WHERE table_schema = 'public'
        UNION ALL
        SELECT 'constraint',
               conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'public'::regnamespace
        UNION ALL
        SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
        ORDER BY 1, 2
        """
    ).fetchall()


def _insert(conn: psycopg.Connection[Any], table: str, **values: Any) -> None:
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table),
        sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)),
    )
    conn.execute(query, list(values.values()))


def test_bootstrap_twice_on_a_fresh_database_is_harmless(diamond_db_server: Server) -> None:
    with (
        diamond_db_server.database("diamond_db_boot", bootstrap=False) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        conn.execute(bootstrap_sql().encode())
        first = _catalog(conn)
        conn.execute(bootstrap_sql().encode())
        assert _catalog(conn) == first
        rules = conn.execute("SELECT priority, markup_ratio, rating FROM pricing_rules")
        assert [tuple(map(str, r)) for r in rules] == [("1000", "1.1500", "5")]


def test_bootstrap_keeps_an_operators_rules(conn: psycopg.Connection[Any]) -> None:
    conn.execute("UPDATE pricing_rules SET markup_ratio = 1.3")
    conn.execute(bootstrap_sql().encode())
    rows = conn.execute("SELECT markup_ratio FROM pricing_rules").fetchall()
    assert [str(r[0]) for r in rows] == ["1.3000"]


def _diamond_id(conn: psycopg.Connection[Any]) -> Any:
    _insert(conn, "diamonds", **DIAMOND)
    return conn.execute("SELECT id FROM diamonds").fetchone()[0]  # type: ignore[index]


VIOLATIONS: list[tuple[str, dict[str, Any], str]] = [
    ("diamonds", {**DIAMOND, "availability": "reserved"}, "diamonds_availability_check"),
    ("diamonds", {**DIAMOND, "status": "gone"}, "diamonds_status_check"),
    ("diamonds", {**DIAMOND, "rating": 11}, "diamonds_rating_check"),
    ("diamonds", {**DIAMOND, "rating": 0}, "diamonds_rating_check"),
    ("diamonds", {**DIAMOND, "carats": 0}, "diamonds_carats_check"),
    ("diamonds", {**DIAMOND, "supplier_price_cents": -1}, "diamonds_prices_check"),
    ("diamonds", {**DIAMOND, "markup_ratio": 0}, "diamonds_markup_ratio_check"),
    ("raw_diamonds", {"consolidation_status": "lost"}, "raw_diamonds_consolidation_status_check"),
    ("raw_diamonds", {"consolidated": True}, "raw_diamonds_consolidated_check"),
    ("raw_diamonds", {"payload_hash": "ABC"}, "raw_diamonds_payload_hash_check"),
    (
        "pricing_rules",
        {"markup_ratio": 1, "carat_min": 2, "carat_max": 1},
        "pricing_rules_carat_range_check",
    ),
    ("pricing_rules", {"markup_ratio": 1, "shapes": []}, "pricing_rules_shapes_check"),
    ("pricing_rules", {"markup_ratio": 0}, "pricing_rules_markup_ratio_check"),
    ("pricing_rules", {"markup_ratio": 1, "rating": 11}, "pricing_rules_rating_check"),
    ("run_metadata", {"run_type": "weekly", "expected_workers": 1}, "run_metadata_run_type_check"),
    ("run_metadata", {"run_type": "full", "expected_workers": -1}, "run_metadata_counters_check"),
    ("api_keys", {"key_hash": "not-a-hash", "client_name": "c"}, "api_keys_key_hash_check"),
]

RAW = {
    "run_id": "00000000-0000-0000-0000-000000000001",
    "supplier_stone_id": "S1",
    "offer_id": "O1",
    "payload": "{}",
    "payload_hash": "0" * 64,
}


@pytest.mark.parametrize(("table", "values", "constraint"), VIOLATIONS)
def test_check_constraints(
    conn: psycopg.Connection[Any], table: str, values: dict[str, Any], constraint: str
) -> None:
    if table == "raw_diamonds":
        values = {**RAW, **values}
    with pytest.raises(psycopg.errors.CheckViolation) as raised:
        _insert(conn, table, **values)
    assert raised.value.diag.constraint_name == constraint
    assert raised.value.sqlstate == "23514"


def test_status_checks_of_child_tables(conn: psycopg.Connection[Any]) -> None:
    run_id = conn.execute(
        "INSERT INTO run_metadata (run_type, expected_workers) VALUES ('full', 1) RETURNING run_id"
    ).fetchone()[0]  # type: ignore[index]
    diamond_id = _diamond_id(conn)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (
            "worker_runs",
            {"run_id": run_id, "partition_id": "p", "worker_id": run_id, "status": "paused"},
            "worker_runs_status_check",
        ),
        (
            "worker_runs",
            {"run_id": run_id, "partition_id": "p", "worker_id": run_id, "records_processed": -1},
            "worker_runs_records_processed_check",
        ),
        (
            "hold_history",
            {"diamond_id": diamond_id, "supplier": "s", "offer_id": "o", "status": "lost"},
            "hold_history_status_check",
        ),
        (
            "purchase_history",
            {
                "diamond_id": diamond_id,
                "supplier": "s",
                "offer_id": "o",
                "idempotency_key": "k",
                "status": "lost",
            },
            "purchase_history_status_values_check",
        ),
    ]
    for table, values, constraint in cases:
        with pytest.raises(psycopg.errors.CheckViolation) as raised:
            _insert(conn, table, **values)
        assert raised.value.diag.constraint_name == constraint


def test_unique_constraints(conn: psycopg.Connection[Any]) -> None:
    diamond_id = _diamond_id(conn)
    run_id = conn.execute(
        "INSERT INTO run_metadata (run_type, expected_workers) VALUES ('full', 1) RETURNING run_id"
    ).fetchone()[0]  # type: ignore[index]
    firsts: list[tuple[str, dict[str, Any], str]] = [
        ("diamonds", {**DIAMOND, "offer_id": "O2"}, "diamonds_supplier_stone_key"),
        # The nivoda partition's index of the per-feed key (supplier, supplier_stone_id).
        ("raw_diamonds", RAW, "raw_diamonds_nivoda_supplier_supplier_stone_id_key"),
        (
            "worker_runs",
            {"run_id": run_id, "partition_id": "p", "worker_id": run_id},
            "worker_runs_run_partition_key",
        ),
        ("api_keys", {"key_hash": "a" * 64, "client_name": "c"}, "api_keys_key_hash_key"),
        (
            "purchase_history",
            {"diamond_id": diamond_id, "supplier": "s", "offer_id": "o", "idempotency_key": "k"},
            "purchase_history_idempotency_key_key",
        ),
    ]
    for table, row, constraint in firsts:
        if table != "diamonds":
            _insert(conn, table, **row)
        with pytest.raises(psycopg.errors.UniqueViolation) as raised:
            _insert(conn, table, **row)
        assert raised.value.diag.constraint_name == constraint
        assert raised.value.sqlstate == "23505"


def test_same_stone_from_another_supplier_is_another_diamond(
    conn: psycopg.Connection[Any],
) -> None:
    _insert(conn, "diamonds", **DIAMOND)
    _insert(conn, "diamonds", **{**DIAMOND, "supplier": "other"})
    assert conn.execute("SELECT count(*) FROM diamonds").fetchone() == (2,)


@pytest.mark.parametrize(
    ("table", "column"),
    [
        ("diamonds", "lab_grown"),
        ("diamonds", "availability"),
        ("run_metadata", "completed_workers"),
        ("api_keys", "active"),
    ],
)
def test_flags_and_counters_are_not_null(
    conn: psycopg.Connection[Any], table: str, column: str
) -> None:
    rows: dict[str, dict[str, Any]] = {
        "diamonds": DIAMOND,
        "run_metadata": {"run_type": "full", "expected_workers": 1},
        "api_keys": {"key_hash": "b" * 64, "client_name": "c"},
    }
    values = rows[table]
    with pytest.raises(psycopg.errors.NotNullViolation):
        _insert(conn, table, **{**values, column: None})


def test_foreign_keys(conn: psycopg.Connection[Any]) -> None:
    missing = "00000000-0000-0000-0000-00000000dead"
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        _insert(conn, "hold_history", diamond_id=missing, supplier="s", offer_id="o")
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        _insert(conn, "worker_runs", run_id=missing, partition_id="p", worker_id=missing)

"""sql/migrations/adopt/0001_from_typescript.sql, run the way `diamond-db migrate` runs it.

Each test builds a TypeScript-era database (tests/ts_era.py) on a throw-away server, runs the
adoption file one statement per `conn.execute()` on an autocommit connection, then does what
the runner does after the file (`Migrator.finish_constraints`): VALIDATE every NOT VALID
constraint in its own transaction, and turn each validated `<table>_<column>_not_null` CHECK
into SET NOT NULL. The
result must have the catalog sql/bootstrap.sql builds and the data the TypeScript era wrote
(with the file's stated NULL conversions).
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import psycopg
import pytest
import ts_era
from catalog import Entry, assert_same_catalog, catalog
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from diamond_db._executor import Observer
from diamond_db._server import Server
from diamond_db.migrations import Migrator
from diamond_db.registry import default_registry

# The runner splits the file with pglast (a dependency the migration runner brings).
pglast = pytest.importorskip("pglast")

ADOPTION_FILE: Final = (
    Path(__file__).resolve().parent.parent / "sql/migrations/adopt/0001_from_typescript.sql"
)
INITIAL_SCHEMA: Final = ADOPTION_FILE.parent.parent / "0001_initial_schema.sql"
DIAMONDS: Final = 20_000
LOCK_TIMEOUT: Final = "5s"
# Table lock modes, strongest first, as pg_locks names them and as the `-- locks:` lines do.
LOCK_MODES: Final = {
    "AccessExclusiveLock": "ACCESS EXCLUSIVE",
    "ExclusiveLock": "EXCLUSIVE",
    "ShareRowExclusiveLock": "SHARE ROW EXCLUSIVE",
    "ShareLock": "SHARE",
    "ShareUpdateExclusiveLock": "SHARE UPDATE EXCLUSIVE",
    "RowExclusiveLock": "ROW EXCLUSIVE",
}
# squawk cannot see into DO bodies; linting their statements apart, these rules fire and are
# answered in the file: each statement is guarded by a catalog check (prefer-robust-stmts), the
# renames are the point (renaming-object), the runner sets the lock timeout (require-*-timeout).
DO_BODY_EXCLUSIONS: Final = (
    "prefer-robust-stmts,renaming-object,require-lock-timeout,require-statement-timeout"
)


def adoption_statements() -> list[str]:
    """The file's statements, split as the runner splits them (each with its comments)."""
    text = ADOPTION_FILE.read_text(encoding="utf-8")
    return [str(statement) for statement in pglast.split(text, with_parser=False)]


def step_comment(statement: str) -> list[str]:
    """The comment lines directly before a statement, after the last blank line."""
    block: list[str] = []
    for line in statement.splitlines():
        if line.startswith("--"):
            block.append(line)
        elif not line.strip():
            block = []
        else:
            break
    return block


def connect(url: str) -> psycopg.Connection[Any]:
    """An autocommit connection with the runner's lock timeout."""
    conn = psycopg.connect(url, autocommit=True)
    conn.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'".encode())
    return conn


def run_adoption(conn: psycopg.Connection[Any], statements: list[str] | None = None) -> None:
    """Every statement alone, one per round trip, as the runner sends them."""
    for statement in adoption_statements() if statements is None else statements:
        conn.execute(statement.encode())


def drop_invalid_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    """What the runner does before a re-run: drop the INVALID indexes a failed CIC left."""
    rows = conn.execute(
        "SELECT indexrelid::regclass::text FROM pg_index "
        "JOIN pg_class ON pg_class.oid = indexrelid "
        "WHERE NOT indisvalid AND relnamespace = 'public'::regnamespace"
    ).fetchall()
    for (name,) in rows:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
    return [name for (name,) in rows]


def finalize(url: str) -> dict[str, int]:
    """The runner's own work after the file (`Migrator.finish_constraints`): VALIDATE each
    NOT VALID constraint, turn validated `<table>_<column>_not_null` checks into SET NOT NULL.
    Returns {constraint: violating rows} for those that failed validation."""
    runner = Migrator(url, default_registry(), Observer(3600, None))
    return {v.constraint: v.count for v in asyncio.run(runner.finish_constraints())}


def do_body_statements() -> list[str]:
    """The ALTER / UPDATE statements inside the file's DO blocks, which squawk does not read."""
    found: list[str] = []
    for statement in adoption_statements():
        block = re.search(r"DO \$adopt\$(.*)\$adopt\$", statement, re.DOTALL)
        if block is not None:
            found += re.findall(
                r"\b((?:ALTER TABLE|ALTER INDEX|UPDATE)\b(?:[^;']|'[^']*')*;)", block.group(1)
            )
    return found


def table_locks(conn: psycopg.Connection[Any]) -> dict[str, str]:
    """The strongest lock this session holds on each table of the public schema."""
    rows = conn.execute(
        "SELECT c.relname, l.mode FROM pg_locks AS l JOIN pg_class AS c ON c.oid = l.relation "
        "WHERE l.pid = pg_backend_pid() AND l.granted AND c.relkind = 'r' "
        "AND c.relnamespace = 'public'::regnamespace"
    ).fetchall()
    strongest: dict[str, str] = {}
    order = list(LOCK_MODES)
    for table, mode in rows:
        if mode not in LOCK_MODES:
            continue  # ACCESS SHARE / ROW SHARE: what any reader takes
        if table not in strongest or order.index(mode) < order.index(strongest[table]):
            strongest[table] = mode
    return {table: LOCK_MODES[mode] for table, mode in strongest.items()}


def index_oids(conn: psycopg.Connection[Any], names: list[str]) -> list[int]:
    """The OIDs of indexes (by name, in order): unchanged by a rename, new after a rebuild."""
    rows = [conn.execute("SELECT %s::regclass::oid", (name,)).fetchone() for name in names]
    return [int(row[0]) for row in rows if row is not None]


@pytest.fixture(scope="module")
def library_catalog(diamond_db_server: Server) -> list[Entry]:
    """The catalog of a fresh database at version 0001 (sql/migrations/0001_initial_schema.sql),
    the version the adoption file is recorded as; `migrate` then applies the later migrations
    as usual (test_adoption.py checks that whole upgrade against sql/bootstrap.sql)."""
    with (
        diamond_db_server.database("adopt_reference", bootstrap=False) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        conn.execute(INITIAL_SCHEMA.read_text(encoding="utf-8").encode())
        return catalog(conn)


@pytest.fixture(scope="module")
def ts_template(diamond_db_server: Server) -> Iterator[str]:
    """A TypeScript-era database filled with DIAMONDS diamonds and their companions, built once
    per module; each test works on a copy (CREATE DATABASE ... TEMPLATE). Yields its name."""
    with diamond_db_server.database("adopt_ts_template", bootstrap=False) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            ts_era.create_ts_schema(conn)
            ts_era.fill_ts_data(conn, diamonds=DIAMONDS, seed=7)
        yield str(conninfo_to_dict(url)["dbname"])


@pytest.fixture
def ts_url(diamond_db_server: Server, ts_template: str) -> Iterator[str]:
    """A fresh copy of the module's TypeScript-era database."""
    name = f"adopt_ts_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(diamond_db_server.admin_url, autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(ts_template)
            )
        )
    url = make_conninfo(diamond_db_server.admin_url, dbname=name)
    try:
        yield url
    finally:
        diamond_db_server.drop_database(url)


def test_the_file_follows_the_runners_conventions() -> None:
    text = ADOPTION_FILE.read_text(encoding="utf-8")
    header = text.split("\n\n")[0].splitlines()
    assert all(line.startswith("--") for line in header)
    assert "-- transaction: none" in header
    statements = adoption_statements()
    for statement in statements:
        comment = step_comment(statement)
        assert comment, statement[:80]
        kinds = [line.split(":")[0] for line in comment]
        assert "-- locks" in kinds, statement[:80]
        cost = [line for line in comment if line.startswith("-- cost:")]
        assert len(cost) == 1, statement[:80]
        assert re.fullmatch(r"-- cost: (none|[a-z_]+ \d+)", cost[0]), cost[0]
        body = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
        assert "SET NOT NULL" not in body
        assert "VALIDATE" not in body
        assert "%" not in body  # nothing a client-side parameter parser could trip on
        if "CREATE INDEX" in body:
            assert "CONCURRENTLY IF NOT EXISTS" in body
        if "DROP INDEX" in body:
            assert "CONCURRENTLY IF EXISTS" in body
        for added in re.findall(r"ADD CONSTRAINT (\w+)", body):
            assert re.search(rf"conname = '{added}'", body), added  # re-runnable
        for clause in re.findall(r"ADD CONSTRAINT .*?;", body, re.DOTALL):
            assert clause.endswith(" NOT VALID;"), clause


def test_adoption_reaches_the_library_catalog_and_keeps_the_data(
    ts_url: str, library_catalog: list[Entry]
) -> None:
    with connect(ts_url) as conn:
        nulls = ts_era.insert_legacy_nulls(conn)
        kept = {
            "hold_history_diamond_created_idx": "idx_hold_history_diamond_id",
            "purchase_history_diamond_idx": "idx_purchase_history_diamond_id",
            "diamonds_supplier_stone_key": "diamonds_supplier_supplier_stone_id_key",
            "worker_runs_run_partition_key": "worker_runs_run_id_partition_id_key",
        }
        oids_before = index_oids(conn, list(kept.values()))
        before = ts_era.snapshot(conn)
        counts = ts_era.row_counts(conn)
        started = datetime.now(UTC)
        statements = adoption_statements()
        for statement in statements:  # each statement twice: a retry after it committed
            conn.execute(statement.encode())
            conn.execute(statement.encode())
        assert finalize(ts_url) == {}
        adopted = datetime.now(UTC)
        assert_same_catalog(library_catalog, catalog(conn))
        # Identical indexes were renamed, not rebuilt.
        assert index_oids(conn, list(kept)) == oids_before
        after = ts_era.snapshot(conn)
        assert ts_era.compare_snapshots(before, after, adopted_between=(started, adopted)) == []
        assert ts_era.row_counts(conn) == counts
        assert len(nulls) >= len(ts_era.NULL_CONVERSIONS)
        # Consolidated rows are 'done', the others pending, except the two rows whose
        # consolidated was NULL: 'failed', with the reason.
        statuses = conn.execute(
            "SELECT consolidation_status, count(*) FROM raw_diamonds_nivoda GROUP BY 1 ORDER BY 1"
        ).fetchall()
        consolidated = DIAMONDS * 92 // 100
        assert statuses == [
            ("done", consolidated),
            ("failed", 2),
            ("pending", DIAMONDS - consolidated + 1),  # + the LEGACY-R3 row
        ]
        errors = conn.execute(
            "SELECT supplier_stone_id FROM raw_diamonds_nivoda "
            "WHERE consolidation_error LIKE 'adopted from the TypeScript schema%%' ORDER BY 1"
        ).fetchall()
        assert errors == [("LEGACY-R1",), ("LEGACY-R2",)]

        # Running the whole file again changes nothing, data included.
        again = catalog(conn)
        run_adoption(conn, statements)
        assert finalize(ts_url) == {}
        assert catalog(conn) == again
        assert ts_era.snapshot(conn) == after


def test_a_killed_concurrent_index_build_is_rebuilt_on_rerun(
    ts_url: str, library_catalog: list[Entry]
) -> None:
    statements = adoption_statements()
    target = next(i for i, s in enumerate(statements) if "diamonds_search_created_at_idx\nON" in s)
    with connect(ts_url) as conn, psycopg.connect(ts_url) as blocker:
        run_adoption(conn, statements[:target])
        # An open writing transaction: the build registers its (invalid) index, then waits.
        blocker.execute("LOCK TABLE diamonds IN ROW EXCLUSIVE MODE")
        errors: list[BaseException] = []
        pid = conn.info.backend_pid

        def build() -> None:
            try:
                conn.execute(statements[target].encode())
            except psycopg.Error as exc:
                errors.append(exc)

        thread = threading.Thread(target=build)
        thread.start()
        with psycopg.connect(ts_url, autocommit=True) as watcher:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                row = watcher.execute(
                    "SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)
                ).fetchone()
                if row is not None and row[0] == "Lock":
                    break
                time.sleep(0.01)  # polling the build's state
            watcher.execute("SELECT pg_terminate_backend(%s)", (pid,))
        thread.join(30)
        blocker.rollback()
        assert errors, "the index build was not interrupted"
    with connect(ts_url) as conn:
        invalid = conn.execute(
            "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid"
        ).fetchall()
        assert invalid == [("diamonds_search_created_at_idx",)]
        assert drop_invalid_indexes(conn) == ["diamonds_search_created_at_idx"]
        run_adoption(conn, statements)  # the runner re-runs the whole file
        assert finalize(ts_url) == {}
        assert_same_catalog(library_catalog, catalog(conn))


def test_the_ts_schema_is_the_documented_one(diamond_db_server: Server) -> None:
    with (
        diamond_db_server.database("adopt_ts_schema", bootstrap=False) as url,
        psycopg.connect(url, autocommit=True) as conn,
    ):
        ts_era.create_ts_schema(conn)
        built = catalog(conn)
        got: dict[str, list[str]] = {}
        for kind, name, _ in built:
            got.setdefault(kind, []).append(name)
        columns = {tuple(name.split(".", 1)) for name in got["column"]}
        assert columns == {(t, c) for t, cs in ts_era.TS_COLUMNS.items() for c in cs}
        assert len(got["column"]) == 8 + 11 + 36 + 12 + 9 + 10 + 9 + 11
        names = {name.split(".", 1)[1] for name in got["constraint"]}
        assert {
            "diamonds_supplier_supplier_stone_id_key",
            "worker_runs_run_id_partition_id_key",
            "api_keys_key_hash_key",
            "raw_diamonds_nivoda_supplier_stone_id_key",
            "purchase_history_idempotency_key_key",
            "hold_history_diamond_id_fkey",
            "purchase_history_diamond_id_fkey",
            "diamonds_rating_check",
            "pricing_rules_rating_check",
        } <= names
        assert len(got["index"]) == 8 + 5 + 19  # primary keys, unique constraints, indexes
        assert "function" not in got
        assert "trigger" not in got
        rules = conn.execute("SELECT priority, markup_ratio, rating, active FROM pricing_rules")
        assert [tuple(map(str, r)) for r in rules] == [("1000", "1.1500", "5", "True")]
        # Filling it (indexes deferred, then re-created) leaves the same catalog.
        counts = ts_era.fill_ts_data(conn, diamonds=500, seed=3)
        assert counts["diamonds"] == 500
        assert catalog(conn) == built


def test_each_step_takes_the_table_locks_its_comment_names(
    ts_url: str, library_catalog: list[Entry]
) -> None:
    """Every step that can run inside a transaction is run in one, and the strongest lock it
    then holds on each table must be named in its `-- locks:` line. (Index builds and drops,
    the batched backfills and ANALYZE cannot: their locks are sampled by measure_adoption.py.)"""
    with connect(ts_url) as conn:
        audited = 0
        for statement in adoption_statements():
            body = "\n".join(line for line in statement.splitlines() if not line.startswith("--"))
            if "CONCURRENTLY" in body or "COMMIT;" in body or body.startswith("ANALYZE"):
                conn.execute(statement.encode())
                continue
            with conn.transaction():
                conn.execute(statement.encode())
                held = table_locks(conn)
            locks = next(line for line in step_comment(statement) if line.startswith("-- locks:"))
            for table, mode in held.items():
                assert f"{mode} on {table}" in locks, (locks, table, mode)
            audited += 1
        assert audited >= 24
        assert finalize(ts_url) == {}
        assert_same_catalog(library_catalog, catalog(conn))


def test_squawk_has_nothing_left_to_say(tmp_path: Path) -> None:
    squawk = shutil.which("squawk")
    if squawk is None:
        pytest.skip("squawk is not installed (pip install squawk-cli)")
    done = subprocess.run(
        [squawk, "--pg-version", "15", "--reporter", "gcc", str(ADOPTION_FILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    bodies = tmp_path / "do_bodies.sql"
    statements = do_body_statements()
    assert len(statements) >= 45
    bodies.write_text("\n\n".join(statements) + "\n", encoding="utf-8")
    done = subprocess.run(
        [squawk, "--pg-version", "15", "--reporter", "gcc", "--exclude", DO_BODY_EXCLUSIONS,
         str(bodies)],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr

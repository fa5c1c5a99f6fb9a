"""Schema migrations: bootstrap == migrations, the ledger, concurrency, lock timeouts, faults."""

from __future__ import annotations

import asyncio
import logging
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from catalog import assert_same_catalog, catalog, first_difference
from helpers import fetch, scalar

from diamond_db import Database, MigrationError, MigrationStatus, SchemaMismatch
from diamond_db._resources import bootstrap_sql, data_dir
from diamond_db._server import PgBouncer, Server, ServerUnavailable
from diamond_db.migrations import checksum, load_migrations

SHIPPED = data_dir("sql") / "migrations"
LEDGER = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
VALID_NOTE_INDEX = (
    "SELECT indisvalid FROM pg_index WHERE indexrelid = 'diamonds_note_idx'::regclass"
)


def recorded(url: str, version: str) -> bool:
    """Whether the ledger has a row for `version`."""
    return bool(scalar(url, "SELECT count(*) FROM schema_migrations WHERE version = %s", version))


@pytest.fixture
def empty_url(diamond_db_server: Server) -> Iterator[str]:
    """A new database without any schema."""
    with diamond_db_server.database("diamond_db_mig", bootstrap=False) as url:
        yield url


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the shipped migrations that a test may add files to."""
    copy = tmp_path / "migrations"
    shutil.copytree(SHIPPED, copy)
    return copy


def _next_version(folder: Path) -> int:
    return int(load_migrations(folder)[-1].version) + 1


def add(folder: Path, name: str, text: str) -> str:
    """Write the next migration of `folder`; its version."""
    version = f"{_next_version(folder):04d}"
    (folder / f"{version}_{name}.sql").write_text(f"-- {name}: a test migration.\n{text}")
    return version


def apply_bootstrap(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(bootstrap_sql().encode())


# -- bootstrap.sql equals the migrations ---------------------------------------------


async def test_migrations_from_zero_build_exactly_the_bootstrap_catalog(
    diamond_db_server: Server,
) -> None:
    with (
        diamond_db_server.database("diamond_db_boot", bootstrap=False) as booted,
        diamond_db_server.database("diamond_db_migr", bootstrap=False) as migrated,
    ):
        apply_bootstrap(booted)
        applied = await Database(migrated).migrate()
        assert [s.version for s in applied] == [m.version for m in load_migrations(SHIPPED)]
        assert_same_catalog(catalog(booted), catalog(migrated))
        # Same ledger (bootstrap records what migrate would) and the same seeded rows.
        assert fetch(booted, LEDGER) == fetch(migrated, LEDGER)
        rules = "SELECT priority, markup_ratio, rating, active FROM pricing_rules"
        assert fetch(booted, rules) == fetch(migrated, rules)


def test_the_catalog_comparison_names_the_first_difference(empty_url: str) -> None:
    apply_bootstrap(empty_url)
    before = catalog(empty_url)
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE diamonds ALTER COLUMN cut SET DEFAULT 'EX'")
        conn.execute("DROP INDEX diamonds_search_rating_idx")
    difference = first_difference(before, catalog(empty_url))
    assert difference is not None
    assert difference.startswith("column diamonds.cut differs")


def test_bootstrap_records_every_migration_with_its_checksum(empty_url: str) -> None:
    apply_bootstrap(empty_url)
    expected = [(m.version, m.name, m.checksum) for m in load_migrations(SHIPPED)]
    assert fetch(empty_url, LEDGER) == expected
    assert fetch(empty_url, "SELECT DISTINCT applied_with FROM schema_migrations") == [
        ("sql/bootstrap.sql",)
    ]


async def test_status_after_bootstrap_reports_everything_applied(empty_url: str) -> None:
    apply_bootstrap(empty_url)
    statuses = await Database(empty_url).migration_status()
    assert {s.state for s in statuses} == {"applied"}
    assert await Database(empty_url).migrate() == []


def test_bootstrap_on_a_current_database_changes_nothing(empty_url: str) -> None:
    apply_bootstrap(empty_url)
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("DELETE FROM pricing_rules")  # an operator's choice, never undone
    before = catalog(empty_url), fetch(empty_url, "SELECT * FROM schema_migrations")
    apply_bootstrap(empty_url)
    assert (catalog(empty_url), fetch(empty_url, "SELECT * FROM schema_migrations")) == before
    assert scalar(empty_url, "SELECT count(*) FROM pricing_rules") == 0


@pytest.mark.parametrize(
    "setup",
    [
        "CREATE TABLE diamonds (id int)",  # tables but no ledger: an unknown schema
        "CREATE TABLE customers (id int)",
    ],
)
def test_bootstrap_refuses_an_unknown_schema_and_changes_nothing(
    empty_url: str, setup: str
) -> None:
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute(setup.encode())
    before = catalog(empty_url)
    with pytest.raises(psycopg.errors.RaiseException) as caught:
        apply_bootstrap(empty_url)
    assert "diamond-db migrate" in (caught.value.diag.message_hint or "")
    assert catalog(empty_url) == before


def test_bootstrap_refuses_another_version_and_changes_nothing(empty_url: str) -> None:
    apply_bootstrap(empty_url)
    with psycopg.connect(empty_url, autocommit=True) as conn:  # as if a newer deploy ran 9999
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum, duration_ms, applied_with)"
            " VALUES ('9999', 'newer', repeat('0', 64), 1, 'test')"
        )
    before = catalog(empty_url), fetch(empty_url, LEDGER)
    with pytest.raises(psycopg.errors.RaiseException, match="not at the version"):
        apply_bootstrap(empty_url)
    assert (catalog(empty_url), fetch(empty_url, LEDGER)) == before


# -- the ledger and the runner ------------------------------------------------------------


async def test_the_ledger_records_what_applied_each_migration(empty_url: str) -> None:
    await Database(empty_url).migrate()
    rows = fetch(
        empty_url,
        "SELECT version, name, checksum, applied_at <= now(), duration_ms >= 0, applied_by,"
        " applied_with FROM schema_migrations ORDER BY version",
    )
    for migration, row in zip(load_migrations(SHIPPED), rows, strict=True):
        assert row[:5] == (migration.version, migration.name, migration.checksum, True, True)
        assert row[5] == "postgres"
        assert row[6].startswith("diamond-db ")
        assert " migrate on " in row[6]


async def test_rerunning_migrate_is_a_no_op(empty_url: str, folder: Path) -> None:
    add(folder, "add_note", "ALTER TABLE diamonds ADD COLUMN note TEXT;\n")
    db = Database(empty_url)
    assert [s.state for s in await db.migrate(migrations_dir=folder)] == ["applied"] * len(
        load_migrations(folder)
    )
    before = catalog(empty_url), fetch(empty_url, "SELECT * FROM schema_migrations")
    assert await db.migrate(migrations_dir=folder) == []
    assert (catalog(empty_url), fetch(empty_url, "SELECT * FROM schema_migrations")) == before


async def test_target_and_dry_run(empty_url: str, folder: Path) -> None:
    second = add(folder, "add_note", "ALTER TABLE diamonds ADD COLUMN note TEXT;\n")
    third = add(folder, "add_memo", "ALTER TABLE diamonds ADD COLUMN memo TEXT;\n")
    db = Database(empty_url)
    planned = await db.migrate(second, dry_run=True, migrations_dir=folder)
    assert [(s.version, s.state) for s in planned][-1] == (second, "pending")
    assert fetch(empty_url, "SELECT to_regclass('schema_migrations')") == [(None,)]
    await db.migrate(second, migrations_dir=folder)
    states = {s.version: s.state for s in await db.migration_status(migrations_dir=folder)}
    assert states[second] == "applied"
    assert states[third] == "pending"
    columns = "SELECT column_name FROM information_schema.columns WHERE table_name = 'diamonds'"
    names = {row[0] for row in fetch(empty_url, columns)}
    assert "note" in names
    assert "memo" not in names


async def test_a_failing_migration_leaves_nothing_behind(empty_url: str, folder: Path) -> None:
    version = add(
        folder,
        "half_done",
        "CREATE TABLE scratch (id INT);\nALTER TABLE diamonds ADD COLUMN note TEXT;\n"
        "SELECT 1 / 0;\n",
    )
    with pytest.raises(MigrationError, match=rf"{version}_half_done.sql failed \[22012\]") as err:
        await Database(empty_url).migrate(migrations_dir=folder)
    assert err.value.version == version
    assert fetch(empty_url, "SELECT to_regclass('scratch')") == [(None,)]
    assert not recorded(empty_url, version)
    assert (
        scalar(
            empty_url,
            "SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'",
        )
        == 0
    )


async def test_an_edited_applied_migration_is_refused_before_anything_runs(
    empty_url: str, folder: Path
) -> None:
    edited = add(folder, "add_note", "ALTER TABLE diamonds ADD COLUMN note TEXT;\n")
    db = Database(empty_url)
    await db.migrate(migrations_dir=folder)
    path = folder / f"{edited}_add_note.sql"
    path.write_text(path.read_text() + "-- a harmless-looking edit\n")
    later = add(folder, "add_memo", "ALTER TABLE diamonds ADD COLUMN memo TEXT;\n")
    with pytest.raises(MigrationError, match=rf"{edited}_add_note.sql were edited"):
        await db.migrate(migrations_dir=folder)
    states = {s.version: s.state for s in await db.migration_status(migrations_dir=folder)}
    assert states[edited] == "changed"
    assert states[later] == "pending"
    assert not recorded(empty_url, later)


def test_checksums_ignore_line_endings_only() -> None:
    assert checksum("SELECT 1;\r\n") == checksum("SELECT 1;\n") != checksum("SELECT 2;\n")


def test_misnamed_and_duplicate_files_are_refused(folder: Path) -> None:
    version = f"{_next_version(folder):04d}"
    (folder / f"{version}_one.sql").write_text("SELECT 1;")
    (folder / f"{version}_two.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=f"version {version} is also"):
        load_migrations(folder)
    (folder / f"{version}_two.sql").unlink()
    (folder / "3_Bad-Name.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"named NNNN_short_name\.sql"):
        load_migrations(folder)


async def test_a_concurrent_build_in_a_transactional_file_is_refused_before_anything_runs(
    empty_url: str, folder: Path
) -> None:
    add(folder, "index", "CREATE INDEX CONCURRENTLY diamonds_note_idx ON diamonds (cut);\n")
    with pytest.raises(MigrationError, match="CREATE INDEX CONCURRENTLY cannot run inside"):
        await Database(empty_url).migrate(migrations_dir=folder)
    assert fetch(empty_url, "SELECT to_regclass('diamonds')") == [(None,)]


async def test_an_unknown_schema_is_refused(empty_url: str) -> None:
    with psycopg.connect(empty_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE customers (id INT)")
    with pytest.raises(MigrationError, match=r"tables diamond_db does not know \(customers\)"):
        await Database(empty_url).migrate()


# -- concurrency -------------------------------------------------------------------------

SLOW_TRANSACTIONAL = "SELECT pg_sleep(0.5);\nALTER TABLE diamonds ADD COLUMN note TEXT;\n"
CONCURRENT_INDEX = (
    "-- transaction: none\n\n"
    "-- locks: SHARE UPDATE EXCLUSIVE on diamonds while it builds\n"
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS diamonds_note_idx ON diamonds (note);\n\n"
    "SELECT pg_sleep(0.3);\n"
)


def _run_cli(url: str, folder: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "diamond_db",
            "migrate",
            "--database-url",
            url,
            "--migrations-dir",
            str(folder),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _two_processes(url: str, folder: Path) -> list[tuple[int, str, str]]:
    processes = [_run_cli(url, folder) for _ in range(2)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        results.append((process.returncode, out, err))
    return results


def _assert_each_applied_once(url: str, folder: Path, results: list[tuple[int, str, str]]) -> None:
    assert [code for code, _, _ in results] == [0, 0], results
    expected = [(m.version, m.name, m.checksum) for m in load_migrations(folder)]
    assert fetch(url, LEDGER) == expected
    progress = [line for _, out, _ in results for line in out.splitlines()]
    assert len([line for line in progress if line.startswith("applied ")]) == len(expected)
    assert scalar(
        url, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'diamonds_note_idx'::regclass"
    )


def test_two_concurrent_migrate_processes_apply_each_migration_once(
    empty_url: str, folder: Path
) -> None:
    add(folder, "slow_column", SLOW_TRANSACTIONAL)
    add(folder, "note_index", CONCURRENT_INDEX)
    results = _two_processes(empty_url, folder)
    _assert_each_applied_once(empty_url, folder, results)
    assert len([out for _, out, _ in results if "nothing to apply" in out]) == 1


@pytest.fixture(scope="module")
def bouncer(diamond_db_server: Server) -> Iterator[PgBouncer]:
    try:
        started = PgBouncer.start(diamond_db_server.admin_url)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield started
    finally:
        started.stop()


def test_two_concurrent_migrates_through_pgbouncer_apply_each_migration_once(
    empty_url: str, folder: Path, bouncer: PgBouncer
) -> None:
    add(folder, "slow_column", SLOW_TRANSACTIONAL)
    add(folder, "note_index", CONCURRENT_INDEX)
    pooled = bouncer.url(empty_url)
    results = _two_processes(pooled, folder)
    _assert_each_applied_once(empty_url, folder, results)
    # The lease is released, and no setting leaked onto the pooler's server connections.
    assert fetch(empty_url, "SELECT count(*) FROM schema_migrations_lock") == [(0,)]
    with psycopg.connect(pooled, autocommit=True) as conn:
        for _ in range(5):
            assert conn.execute("SHOW lock_timeout").fetchone() == ("0",)


# -- lock timeouts --------------------------------------------------------------------------


@pytest.fixture
async def migrated(empty_url: str) -> str:
    await Database(empty_url).migrate()
    return empty_url


async def _blocking_transaction(url: str) -> psycopg.AsyncConnection[Any]:
    """A session that keeps a transaction open holding a lock on diamonds."""
    conn = await psycopg.AsyncConnection.connect(url, application_name="long report")
    await conn.execute("SELECT count(*) FROM diamonds")
    return conn


async def _runner_waiting(url: str, within: float = 30.0) -> None:
    """Until a migrate session waits for a lock, as pg_locks shows it (the server offers no
    event for a lock wait, so this polls the state itself; it never guesses with a sleep)."""
    deadline = time.monotonic() + within
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = await (
                await conn.execute(
                    "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
                    " WHERE NOT l.granted AND a.application_name LIKE 'diamond-db migrate %'"
                )
            ).fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.01)  # the next look at pg_locks
    raise AssertionError(f"no migrate session waited for a lock within {within} s")


async def test_a_migration_blocked_by_a_long_transaction_times_out_retries_then_fails(
    migrated: str, folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    version = add(folder, "add_note", "ALTER TABLE diamonds ADD COLUMN note TEXT;\n")
    blocker = await _blocking_transaction(migrated)
    try:
        db = Database(migrated)
        with caplog.at_level(logging.WARNING, "diamond_db"):
            migrating = asyncio.create_task(
                db.migrate(migrations_dir=folder, lock_timeout=0.3, retries=2)
            )
            # While the ALTER waits, a search must not queue behind it for long.
            await _runner_waiting(migrated)
            async with Database(migrated, min_size=1) as reader:
                await reader.search_diamonds()
            with pytest.raises(MigrationError) as caught:
                await migrating
    finally:
        await blocker.close()
    message = str(caught.value)
    assert caught.value.version == version
    assert "gave up after 3 attempt(s)" in message
    assert "AccessExclusiveLock on diamonds" in message
    assert "long report" in message
    assert len([r for r in caplog.records if "lock timeout" in r.getMessage()]) == 2
    assert not recorded(migrated, version)
    assert not scalar(
        migrated, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'"
    )


async def test_a_lock_timeout_is_retried_and_succeeds_once_the_lock_is_free(
    migrated: str, folder: Path
) -> None:
    version = add(folder, "add_note", "ALTER TABLE diamonds ADD COLUMN note TEXT;\n")
    blocker = await _blocking_transaction(migrated)
    migrating = asyncio.create_task(
        Database(migrated).migrate(migrations_dir=folder, lock_timeout=0.3, retries=5)
    )
    await _runner_waiting(migrated)
    await blocker.close()  # the long transaction ends between two attempts
    applied = await migrating
    assert [s.version for s in applied] == [version]
    assert scalar(
        migrated, "SELECT count(*) FROM information_schema.columns WHERE column_name = 'note'"
    )


async def test_a_concurrent_build_waiting_past_the_lock_timeout_is_cancelled_and_retried(
    migrated: str, folder: Path
) -> None:
    version = add(folder, "cut_index", CONCURRENT_INDEX.replace("(note)", "(cut)"))
    blocker = await _blocking_transaction(migrated)  # a CIC waits for older writers
    await blocker.execute("LOCK TABLE diamonds IN ROW EXCLUSIVE MODE")
    with pytest.raises(MigrationError, match="gave up after 2 attempt") as caught:
        await Database(migrated).migrate(migrations_dir=folder, lock_timeout=0.3, retries=1)
    await blocker.close()
    assert "long report" in str(caught.value)
    # The cancelled build left an INVALID index; the next run drops and rebuilds it.
    assert fetch(
        migrated,
        "SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass('diamonds_note_idx')",
    ) == [(False,)]
    applied = await Database(migrated).migrate(migrations_dir=folder)
    assert [s.version for s in applied] == [version]
    assert scalar(
        migrated, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'diamonds_note_idx'::regclass"
    )


async def test_a_non_transactional_migration_killed_half_way_is_rerun_cleanly(
    migrated: str, folder: Path
) -> None:
    version = add(folder, "cut_index", CONCURRENT_INDEX.replace("(note)", "(cut)"))
    blocker = await _blocking_transaction(migrated)
    await blocker.execute("LOCK TABLE diamonds IN ROW EXCLUSIVE MODE")
    migrating = asyncio.create_task(
        Database(migrated).migrate(migrations_dir=folder, lock_timeout=60, retries=0)
    )
    await _runner_waiting(migrated)  # the build has started and waits for the blocker
    with psycopg.connect(migrated, autocommit=True) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE application_name LIKE 'diamond-db migrate %'"
            " AND query LIKE '%CREATE INDEX CONCURRENTLY%'"
        )
    with pytest.raises(MigrationError, match=r"failed \[57P01\]"):  # admin_shutdown
        await migrating
    await blocker.close()
    assert not recorded(migrated, version)
    applied = await Database(migrated).migrate(migrations_dir=folder)
    assert [s.version for s in applied] == [version]
    assert scalar(
        migrated, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'diamonds_note_idx'::regclass"
    )


# -- the schema check at start --------------------------------------------------------------


async def test_a_database_behind_the_code_fails_at_open_with_schema_mismatch(
    migrated: str,
) -> None:
    last = load_migrations(SHIPPED)[-1].version
    with psycopg.connect(migrated, autocommit=True) as conn:  # one migration behind
        conn.execute("DELETE FROM schema_migrations WHERE version = %s", (last,))
    db = Database(migrated)
    with pytest.raises(SchemaMismatch) as caught:
        await db.open()
    assert caught.value.missing == (last,)
    assert "diamond-db migrate" in str(caught.value)
    with pytest.raises(SchemaMismatch):  # an operation opens, and fails the same way
        await db.get_diamond_by_id("00000000-0000-0000-0000-000000000000")
    # Admin paths are never blocked by it.
    assert [s.state for s in await db.migration_status()][-1] == "pending"


async def test_a_database_ahead_of_the_code_is_accepted_with_one_warning(
    migrated: str, caplog: pytest.LogCaptureFixture
) -> None:
    with psycopg.connect(migrated, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO schema_migrations (version, name, checksum, duration_ms, applied_with)"
            " VALUES ('9999', 'from_a_newer_deploy', repeat('a', 64), 1, 'test')"
        )
    with caplog.at_level(logging.WARNING, "diamond_db"):
        async with Database(migrated, min_size=1) as db:
            await db.search_diamonds()
            await db.search_diamonds()
    warnings = [r for r in caplog.records if "9999" in r.getMessage()]
    assert len(warnings) == 1
    statuses = await Database(migrated).migration_status()
    assert statuses[-1] == MigrationStatus(
        version="9999",
        name="from_a_newer_deploy",
        state="unknown",
        applied_at=statuses[-1].applied_at,
    )

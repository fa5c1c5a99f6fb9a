"""Schema migrations: the numbered files of sql/migrations/, their ledger, and the one runner.

A migration is a plain SQL file `NNNN_short_name.sql`. It runs in one
transaction and is recorded in that transaction, unless its header holds the
line `-- transaction: none`: then its statements run one per round trip
(CREATE INDEX CONCURRENTLY needs that) and the file must be safe to re-run.

Why not an existing runner: the ones checked (see docs/schema-changes.md)
either checksum a migration's id rather than its content, are sync-only, keep
a lock row that stays stuck after a crash, or deadlock with a concurrent index
build. This one keeps everything that could block a live database bounded:

- one runner at a time, by a lease row renewed by a heartbeat (it survives a
  transaction-mode pooler, unlike a session advisory lock, and expires when
  its runner dies); a runner waiting for it holds no transaction open;
- every lock wait bounded by a lock timeout (SET LOCAL inside a migration's
  transaction; outside one, a watchdog cancels a wait that runs past it),
  retried a few times, then a MigrationError naming the blocking session;
- constraints added NOT VALID are validated afterwards, each in its own short
  transaction; rows that violate one are reported, not changed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import pglast
import psycopg
from psycopg import sql

from ._executor import Connection, Observer, run_statement
from ._resources import data_dir
from .errors import ConstraintViolations, MigrationError, SchemaMismatch, ValidationError
from .records import (
    LedgerEntry,
    LockWait,
    MigrationState,
    MigrationStatus,
    UnfinishedConstraint,
)
from .registry import Registry

logger = logging.getLogger("diamond_db")

MIGRATIONS_DIR_VARIABLE = "DIAMOND_DB_MIGRATIONS_DIR"
ADOPTION_FILE = "adopt/0001_from_typescript.sql"
DEFAULT_LOCK_TIMEOUT = 5.0
DEFAULT_RETRIES = 3

_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_NO_TRANSACTION = re.compile(r"^--\s*transaction:\s*none\s*$", re.MULTILINE)
_FIELD = re.compile(r"^[\w-]+:")  # a `-- locks:` / `-- cost:` / `-- squawk-ignore` line
_COST = re.compile(r"^--\s*cost:\s*(\w+)(?:\s+([\d_,.]+))?", re.MULTILINE)
_MASKED_COLUMNS = frozenset({"key_hash"})
_EXAMPLES = 10
_LEASE = 30.0  # seconds a lease lasts without a heartbeat
_HEARTBEAT = 5.0
_WATCH = 0.1  # how often the watchdog looks at the runner's lock waits


# -- the files ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of a migration, with the comment block right above it."""

    sql: str
    comment: str

    @property
    def locks(self) -> str | None:
        """The `-- locks:` paragraph of the step's comment: what it locks, for how long."""
        lines = [line.removeprefix("--").strip() for line in self.comment.splitlines()]
        for i, line in enumerate(lines):
            if line.startswith("locks:"):
                text = [line.removeprefix("locks:").strip()]
                for more in lines[i + 1 :]:
                    if not more or _FIELD.match(more):
                        break
                    text.append(more)
                return " ".join(text)
        return None

    def estimate(self, rows: dict[str, int]) -> float | None:
        """Seconds this step should take: `-- cost: TABLE N` (rows per second, measured)
        and the table's row count; 0 for `-- cost: none`; None when not stated."""
        match = _COST.search(self.comment)
        if match is None:
            return None
        if match[1] == "none":
            return 0.0
        if match[2] is None or match[1] not in rows:
            return None
        rate = float(match[2].replace(",", "").replace("_", ""))
        return rows[match[1]] / rate if rate > 0 else None


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: version, name, text, and how it must run."""

    version: str
    name: str
    path: Path
    text: str
    checksum: str
    transactional: bool

    @property
    def header(self) -> str:
        """The file's leading comment block (what, why, locks, transaction)."""
        return _leading_comments(self.text).split("\n\n", 1)[0]

    def steps(self) -> list[Step]:
        """The statements, split by PostgreSQL's own parser, each with its comment."""
        try:
            pieces = pglast.split(self.text, with_parser=False)
        except pglast.parser.ParseError as exc:
            message = f"{self.path.name}: cannot split: {exc}"
            raise MigrationError(message, version=self.version) from None
        steps = []
        for piece in pieces:
            lead = _leading_comments(piece)
            if lead.startswith(self.header) and self.header:
                lead = lead[len(self.header) :]
            comment = lead.strip().rsplit("\n\n", 1)[-1]
            steps.append(Step(sql=piece.strip(), comment=comment))
        return steps

    def check(self) -> None:
        """Refuse, before anything runs, a transactional file that cannot run in a transaction."""
        if self.transactional:
            for statement in _parse(self):
                problem = _outside_transaction_only(statement.stmt)
                if problem:
                    raise MigrationError(
                        f"{self.path.name}: {problem} cannot run inside a transaction; "
                        "add `-- transaction: none` to its header (and make the file re-runnable)",
                        version=self.version,
                    )


def index_names(text: str) -> list[str]:
    """Names of the indexes some SQL creates (to drop INVALID leftovers before a re-run)."""
    names: list[str] = []
    for statement in pglast.parse_sql(text):
        node = statement.stmt
        if isinstance(node, pglast.ast.IndexStmt) and node.idxname:
            names.append(node.idxname)
    return names


def _parse(migration: Migration) -> Sequence[Any]:
    try:
        return pglast.parse_sql(migration.text)
    except pglast.parser.ParseError as exc:
        raise MigrationError(
            f"{migration.path.name}: not valid SQL: {exc}", version=migration.version
        ) from None


def _outside_transaction_only(node: Any) -> str | None:
    """What in a statement refuses a transaction block, if anything."""
    ast = pglast.ast
    if isinstance(node, ast.IndexStmt) and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if isinstance(node, ast.DropStmt) and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if isinstance(node, ast.ReindexStmt) and any(
        getattr(p, "defname", "") == "concurrently" for p in (node.params or ())
    ):
        return "REINDEX CONCURRENTLY"
    if isinstance(node, ast.VacuumStmt):
        return "VACUUM"
    if isinstance(node, ast.TransactionStmt):
        return "a transaction-control statement (BEGIN/COMMIT)"
    return None


def checksum(text: str) -> str:
    """SHA-256 of a migration's text, line endings normalised (a CRLF checkout is not a change)."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()


def migrations_dir(override: str | Path | None = None) -> Path:
    """The migrations folder: the argument, else DIAMOND_DB_MIGRATIONS_DIR, else the shipped one."""
    chosen = override or os.environ.get(MIGRATIONS_DIR_VARIABLE, "").strip()
    if chosen:
        path = Path(chosen)
        if not path.is_dir():
            raise ValidationError("migrations_dir", f"{path} is not a folder")
        return path
    return data_dir("sql") / "migrations"


def _read(path: Path, version: str, name: str) -> Migration:
    text = path.read_text(encoding="utf-8")
    return Migration(
        version=version,
        name=name,
        path=path,
        text=text,
        checksum=checksum(text),
        transactional=_NO_TRANSACTION.search(_leading_comments(text)) is None,
    )


def _leading_comments(text: str) -> str:
    lines = []
    for line in text.splitlines():
        if line.strip() and not line.startswith("--"):
            break
        lines.append(line)
    return "\n".join(lines)


def load_migrations(folder: Path) -> list[Migration]:
    """Every `NNNN_name.sql` of a folder, in version order; misnamed or duplicate files refused."""
    found: dict[str, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: a migration is named NNNN_short_name.sql")
        version = match[1]
        if version in found:
            raise MigrationError(
                f"{path.name}: version {version} is also {found[version].path.name}",
                version=version,
            )
        found[version] = _read(path, version, match[2])
    return [found[v] for v in sorted(found)]


@cache
def shipped_versions() -> frozenset[str]:
    """The versions this package's code needs (its own sql/migrations/)."""
    return frozenset(m.version for m in load_migrations(data_dir("sql") / "migrations"))


def adoption(folder: Path) -> Migration:
    """The file that upgrades a TypeScript-era database to version 0001, in place."""
    path = folder / ADOPTION_FILE
    if not path.exists():
        raise MigrationError(f"this database needs adopting, but {path} is missing", version="0001")
    return _read(path, "0001", "from_typescript")


# -- the plan ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Planned:
    """A migration `migrate` will apply: the file recorded, and the file that runs for it.

    They differ only when a database the TypeScript package created is adopted:
    the adoption file runs, and version 0001 is recorded with 0001's checksum.
    """

    recorded: Migration
    runs: Migration

    @property
    def adopts(self) -> bool:
        return self.runs is not self.recorded


@dataclass(frozen=True, slots=True)
class Plan:
    """What a migrate run would do, and what the database looks like now."""

    statuses: list[MigrationStatus]
    pending: list[Planned]
    unfinished: list[UnfinishedConstraint]
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def changed(self) -> list[MigrationStatus]:
        return [s for s in self.statuses if s.state == "changed"]


def _statuses(known: list[Migration], ledger: list[LedgerEntry]) -> list[MigrationStatus]:
    recorded = {entry.version: entry for entry in ledger}
    statuses = []
    for migration in known:
        entry = recorded.pop(migration.version, None)
        state: MigrationState = "pending"
        if entry is not None:
            state = "applied" if entry.checksum == migration.checksum else "changed"
        statuses.append(
            MigrationStatus(
                version=migration.version,
                name=migration.name,
                state=state,
                applied_at=entry.applied_at if entry else None,
            )
        )
    for entry in recorded.values():
        statuses.append(
            MigrationStatus(
                version=entry.version, name=entry.name, state="unknown", applied_at=entry.applied_at
            )
        )
    return sorted(statuses, key=lambda s: s.version)


# -- the runner --------------------------------------------------------------------

OnProgress = Callable[[MigrationStatus, float], None]
OnNotice = Callable[[str], None]


class Migrator:
    """Applies a folder of migrations to one database; see the module docstring.

    Uses connections of its own (never a Database's pool) in autocommit mode,
    named by `application_name` so its watchdog can find their lock waits.
    """

    def __init__(
        self,
        url: str,
        registry: Registry,
        observer: Observer,
        *,
        migrations: str | Path | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        on_progress: OnProgress | None = None,
        on_notice: OnNotice | None = None,
    ) -> None:
        if not lock_timeout > 0:
            raise ValidationError("lock_timeout", "must be a positive number of seconds")
        if retries < 0:
            raise ValidationError("retries", "must be 0 or more")
        self.url = url
        self.folder = migrations_dir(migrations)
        self.lock_timeout = lock_timeout
        self.retries = retries
        self.on_progress = on_progress
        self.on_notice = on_notice
        self._running: Migration | None = None  # the file whose statements run now
        self._registry = registry
        self._observer = observer
        self.tag = f"diamond-db migrate {uuid.uuid4().hex[:12]}"
        self.holder = f"{self.tag} on {socket.gethostname()} (pid {os.getpid()})"
        self._watching: Step | None = None  # the non-transactional step under watch
        self._last_wait: LockWait | None = None
        self._cancelled: LockWait | None = None
        self._lost_lease = False
        self.longest_wait = 0.0  # seconds: the longest lock wait the watchdog saw (a report)
        self.wait_samples = 0  # how many watchdog looks (every 0.1 s) found it waiting

    # -- reading ------------------------------------------------------------

    async def status(self) -> list[MigrationStatus]:
        """Every known or recorded migration with its state, in version order."""
        async with self._connect() as conn:
            return _statuses(load_migrations(self.folder), await self._ledger(conn))

    async def _ledger(self, conn: Connection) -> list[LedgerEntry]:
        if not await self._run(conn, "ledger_exists"):
            return []
        result: list[LedgerEntry] = await self._run(conn, "get_ledger")
        return result

    async def plan(self, target: str | None = None) -> Plan:
        """What `migrate(target)` would do now; nothing is written."""
        async with self._connect() as conn:
            return await self._plan(conn, target)

    async def _plan(self, conn: Connection, target: str | None) -> Plan:
        known = load_migrations(self.folder)
        if target is not None and target not in {m.version for m in known}:
            raise ValidationError("target", f"no migration {target!r} in {self.folder}")
        ledger = await self._ledger(conn)
        statuses = _statuses(known, ledger)
        applied = {entry.version for entry in ledger}
        pending = [
            Planned(m, m)
            for m in known
            if m.version not in applied and (target is None or m.version <= target)
        ]
        if pending and pending[0].recorded.version == "0001":
            relations = [row[0] for row in await self._run(conn, "get_relations")]
            if "diamonds" in relations:
                pending[0] = Planned(pending[0].recorded, adoption(self.folder))
            elif relations:
                shown = ", ".join(relations[:8]) + (" …" if len(relations) > 8 else "")
                raise MigrationError(
                    f"the database has tables diamond_db does not know ({shown}) and no "
                    "migrations ledger: refusing to migrate it (use an empty database, or one "
                    "the TypeScript package created)"
                )
        unfinished = await self._run(conn, "get_unfinished_constraints")
        rows = {r.table_name: r.estimated_rows for r in await self._run(conn, "get_row_estimates")}
        return Plan(statuses, pending, unfinished, rows)

    # -- migrating ----------------------------------------------------------

    async def migrate(
        self, target: str | None = None, dry_run: bool = False
    ) -> list[MigrationStatus]:
        """Apply the pending migrations up to `target`, then finish NOT VALID constraints."""
        if dry_run:
            plan = await self.plan(target)
            _refuse_changed(plan)
            return [_pending_status(p) for p in plan.pending]
        async with self._connect() as conn:
            await self._create_ledger(conn)
            async with self._lease(conn):
                plan = await self._plan(conn, target)  # read under the lease: a runner that
                _refuse_changed(plan)  # waited for it finds the other's work done
                for planned in plan.pending:
                    planned.runs.check()
                applied = []
                for planned in plan.pending:
                    applied.append(await self._apply(conn, planned))
                violations = await self._finish_constraints(conn)
        if violations:
            lines = "\n".join(f"  {v}" for v in violations)
            raise MigrationError(
                f"{len(violations)} constraint(s) could not be validated: rows violate them "
                f"(fix the rows, then run `diamond-db migrate` again):\n{lines}",
                violations=tuple(violations),
            )
        return applied

    async def _apply(self, conn: Connection, planned: Planned) -> MigrationStatus:
        migration = planned.recorded
        started = time.perf_counter()
        self._running = planned.runs
        try:
            if planned.runs.transactional:
                applied_at = await self._apply_in_transaction(conn, planned, started)
            else:
                await self._apply_statements(conn, planned.runs)
                applied_at = await self._record(conn, planned, started)
        finally:
            self._running = None
        duration = time.perf_counter() - started
        status = MigrationStatus(
            version=migration.version,
            name=migration.name,
            state="applied",
            applied_at=applied_at,
        )
        logger.info(
            "migration %s_%s applied in %.2f s", migration.version, migration.name, duration
        )
        if self.on_progress is not None:
            self.on_progress(status, duration)
        return status

    async def _record(self, conn: Connection, planned: Planned, started: float) -> datetime:
        """Insert the migration's ledger row; its applied_at."""
        how = f"diamond-db {_version()} migrate on {socket.gethostname()}"
        if planned.adopts:
            how += f" (adopted in place by {ADOPTION_FILE})"
        applied_at: datetime = await self._run(
            conn,
            "record_migration",
            version=planned.recorded.version,
            name=planned.recorded.name,
            checksum=planned.recorded.checksum,
            duration_ms=round((time.perf_counter() - started) * 1000),
            applied_with=how,
        )
        return applied_at

    async def _apply_in_transaction(
        self, conn: Connection, planned: Planned, started: float
    ) -> datetime:
        """The whole file and its ledger row in one transaction, retried on a lock timeout."""
        migration = planned.recorded
        for attempt in range(self.retries + 1):
            self._check_lease(migration)
            try:
                async with conn.transaction():
                    await self._set_lock_timeout(conn)
                    async with self._watch(None):
                        await conn.execute(planned.runs.text.encode())
                    return await self._record(conn, planned, started)
            except psycopg.errors.LockNotAvailable as exc:
                await self._lock_timed_out(migration.path.name, migration.version, attempt, exc)
            except psycopg.Error as exc:
                raise _failed(migration, exc) from exc
        raise AssertionError("unreachable: the last attempt raises")

    async def _apply_statements(self, conn: Connection, migration: Migration) -> None:
        """A `transaction: none` file: each statement alone, each lock wait bounded."""
        for step in migration.steps():
            names = index_names(step.sql)
            for attempt in range(self.retries + 1):
                self._check_lease(migration)
                try:
                    async with self._watch(step):
                        await self._drop_invalid_indexes(conn, names)
                        await conn.execute(step.sql.encode())
                    break
                except (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable) as exc:
                    if isinstance(exc, psycopg.errors.QueryCanceled) and self._cancelled is None:
                        raise _failed(migration, exc) from exc
                    await self._lock_timed_out(migration.path.name, migration.version, attempt, exc)
                except psycopg.Error as exc:
                    raise _failed(migration, exc) from exc
        invalid = await self._run(conn, "get_invalid_indexes", names=index_names(migration.text))
        if invalid:
            listed = ", ".join(row[0] for row in invalid)
            raise MigrationError(
                f"{migration.path.name}: index(es) {listed} are INVALID after the file ran "
                "(run `diamond-db migrate` again: they are dropped and rebuilt)",
                version=migration.version,
            )

    async def _lock_timed_out(
        self, what: str, version: str | None, attempt: int, exc: Exception
    ) -> None:
        """After a lock timeout: pause before the next attempt, or give up naming the blocker."""
        wait = self._cancelled or self._last_wait
        blocking = (
            f"waiting for {wait.mode} on {wait.waiting_for}, held by {wait.blockers}"
            if wait is not None
            else "a lock"
        )
        if attempt >= self.retries:
            raise MigrationError(
                f"{what}: gave up after {attempt + 1} attempt(s), each stopped by "
                f"the {self.lock_timeout:g} s lock timeout: {blocking}",
                version=version,
            ) from exc
        logger.warning(
            "migration %s: lock timeout (%s); retry %d of %d",
            what,
            blocking,
            attempt + 1,
            self.retries,
        )
        await asyncio.sleep(min(self.lock_timeout, 1.0) * (attempt + 1))

    async def _drop_invalid_indexes(self, conn: Connection, names: list[str]) -> None:
        """Drop the INVALID indexes a failed concurrent build of these names left behind."""
        if not names:
            return
        for (name,) in await self._run(conn, "get_invalid_indexes", names=names):
            logger.warning("dropping the INVALID index %s left by a failed build", name)
            drop = sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name))
            await conn.execute(drop)

    # -- constraints added NOT VALID -----------------------------------------

    async def finish_constraints(self) -> list[ConstraintViolations]:
        """Only the last step of `migrate`: validate NOT VALID constraints, finish not-null
        helpers; the constraints rows still violate (nothing is changed for those)."""
        async with self._connect() as conn:
            return await self._finish_constraints(conn)

    async def _finish_constraints(self, conn: Connection) -> list[ConstraintViolations]:
        """Validate what migrations added NOT VALID; turn not-null helpers into SET NOT NULL."""
        problems: list[ConstraintViolations] = []
        for constraint in await self._run(conn, "get_unfinished_constraints"):
            table = sql.Identifier(constraint.table_name)
            name = sql.Identifier(constraint.constraint_name)
            if not constraint.validated:
                try:
                    await self._ddl(
                        conn, sql.SQL("ALTER TABLE {} VALIDATE CONSTRAINT {}").format(table, name)
                    )
                except (psycopg.errors.CheckViolation, psycopg.errors.ForeignKeyViolation):
                    problems.append(await self._violations(conn, constraint))
                    continue
            if constraint.not_null_helper:
                column = sql.Identifier(constraint.column_names[0])
                await self._ddl(
                    conn,
                    sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET NOT NULL").format(table, column),
                    sql.SQL("ALTER TABLE {} DROP CONSTRAINT {}").format(table, name),
                )
        return problems

    async def _ddl(self, conn: Connection, *statements: sql.Composed) -> None:
        """Short DDL in one transaction under the lock timeout, retried like a migration."""
        for attempt in range(self.retries + 1):
            try:
                async with conn.transaction():
                    await self._set_lock_timeout(conn)
                    async with self._watch(None):
                        for statement in statements:
                            await conn.execute(statement)
                return
            except psycopg.errors.LockNotAvailable as exc:
                await self._lock_timed_out(statements[0].as_string(conn), None, attempt, exc)

    async def _violations(
        self, conn: Connection, constraint: UnfinishedConstraint
    ) -> ConstraintViolations:
        """How many rows violate a constraint, and up to ten of them (key, column, value)."""
        table = sql.Identifier(constraint.table_name)
        key = sql.Identifier(constraint.key_column or "ctid")
        columns = constraint.column_names
        if constraint.is_foreign_key:
            assert constraint.referenced_table is not None
            assert constraint.referenced_columns is not None
            pairs = zip(columns, constraint.referenced_columns, strict=True)
            violated = sql.SQL(
                "({present}) AND NOT EXISTS (SELECT 1 FROM {ref} AS r WHERE {match})"
            ).format(
                present=sql.SQL(" AND ").join(
                    sql.SQL("t.{} IS NOT NULL").format(sql.Identifier(c)) for c in columns
                ),
                ref=sql.Identifier(constraint.referenced_table),
                match=sql.SQL(" AND ").join(
                    sql.SQL("r.{} = t.{}").format(sql.Identifier(r), sql.Identifier(c))
                    for c, r in pairs
                ),
            )
        else:  # the catalog's own text of the CHECK, not input
            expression = constraint.definition.removeprefix("CHECK ").removesuffix(" NOT VALID")
            violated = sql.SQL("NOT {}").format(sql.SQL(expression))
        count_query = sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(table, violated)
        rows_query = sql.SQL(
            "SELECT t.{key}::text, {cols} FROM {table} AS t WHERE {cond} ORDER BY 1 LIMIT {n}"
        ).format(
            key=key,
            cols=sql.SQL(", ").join(
                sql.SQL("t.{}::text").format(sql.Identifier(c)) for c in columns
            ),
            table=table,
            cond=violated,
            n=sql.Literal(_EXAMPLES),
        )
        counted = await (await conn.execute(count_query)).fetchone()
        examples = await (await conn.execute(rows_query)).fetchall()
        shown = tuple(
            (str(row[0]), column, _shown(column, value))
            for row in examples
            for column, value in zip(columns, row[1:], strict=True)
        )
        return ConstraintViolations(
            table=constraint.table_name,
            constraint=constraint.constraint_name,
            count=int(counted[0]) if counted else 0,
            rows=shown,
        )

    # -- the lease, the heartbeat and the watchdog -----------------------------

    async def _create_ledger(self, conn: Connection) -> None:
        async with conn.transaction():
            await self._run(conn, "lock_ledger")
            await self._run(conn, "create_ledger")

    @asynccontextmanager
    async def _lease(self, conn: Connection) -> AsyncIterator[None]:
        """Hold the migrate lease (waiting for it without a transaction open) while inside."""
        params = {"holder": self.holder, "lease_ms": round(_LEASE * 1000)}
        announced = 0.0
        while await self._run(conn, "acquire_migration_lock", **params) is None:
            now = time.monotonic()
            if now - announced > 10:
                current = await self._run(conn, "get_migration_lock")
                who = current.holder if current else "another runner"
                logger.warning("waiting for the migration lease held by %s", who)
                announced = now
            await asyncio.sleep(0.2)
        async with self._connect(" watchdog") as watch_conn:
            watcher = asyncio.create_task(self._watchdog(watch_conn, params))
            try:
                yield
            finally:
                watcher.cancel()
                with suppress(asyncio.CancelledError):
                    await watcher
                # On the watchdog's connection: the runner's own may have died.
                with suppress(psycopg.Error):
                    await self._run(watch_conn, "release_migration_lock", holder=self.holder)

    async def _watchdog(self, conn: Connection, params: dict[str, Any]) -> None:
        """Renew the lease; record the runner's lock waits; cancel those past the timeout."""
        renewed = time.monotonic()
        while True:
            await asyncio.sleep(_WATCH)
            try:
                if time.monotonic() - renewed >= _HEARTBEAT:
                    if await self._run(conn, "renew_migration_lock", **params) == 0:
                        self._lost_lease = True
                    renewed = time.monotonic()
                waits = await self._run(conn, "get_lock_waits", application_name=self.tag)
                if waits:
                    self._last_wait = waits[0]
                    self.wait_samples += 1
                    self.longest_wait = max(self.longest_wait, waits[0].waited or 0.0)
                wait = waits[0] if waits else None
                if (
                    self._watching is not None
                    and wait is not None
                    and (wait.waited or 0) > self.lock_timeout
                ):
                    self._cancelled = wait
                    await self._run(conn, "cancel_backend", pid=wait.pid)
            except psycopg.Error:
                logger.warning("the migration watchdog's query failed", exc_info=True)

    @asynccontextmanager
    async def _watch(self, step: Step | None) -> AsyncIterator[None]:
        """Mark a statement as running (cancellable on a long lock wait when `step` is given)."""
        self._watching, self._cancelled, self._last_wait = step, None, None
        try:
            yield
        finally:
            self._watching = None

    def _check_lease(self, migration: Migration) -> None:
        if self._lost_lease:
            raise MigrationError(
                f"{migration.path.name}: lost the migration lease to another runner "
                "(this one stalled past its lease); nothing more was applied",
                version=migration.version,
            )

    # -- plumbing -------------------------------------------------------------

    def _notice(self, diagnostic: psycopg.errors.Diagnostic) -> None:
        """A migration's NOTICE/WARNING (a backfill's report, say): logged and passed on.

        The server's notices on the runner's own statements are not shown.
        """
        if self._running is None:
            return
        text = f"{self._running.path.name}: {diagnostic.message_primary}"
        logger.info("%s", text)
        if self.on_notice is not None:
            self.on_notice(text)

    @asynccontextmanager
    async def _connect(self, suffix: str = "") -> AsyncIterator[Connection]:
        conn = await psycopg.AsyncConnection.connect(
            self.url,
            autocommit=True,
            prepare_threshold=None,
            application_name=self.tag + suffix,
        )
        if not suffix:  # the connection migrations run on
            conn.add_notice_handler(self._notice)
        try:
            yield conn
        finally:
            await conn.close()

    async def _set_lock_timeout(self, conn: Connection) -> None:
        await self._run(conn, "set_lock_timeout", timeout=str(round(self.lock_timeout * 1000)))

    async def _run(self, conn: Connection, statement: str, /, **params: Any) -> Any:
        return await run_statement(self._observer, self._registry[statement], conn, params)


def _refuse_changed(plan: Plan) -> None:
    if plan.changed:
        files = ", ".join(f"{s.version}_{s.name}.sql" for s in plan.changed)
        raise MigrationError(
            f"refusing to migrate: applied migration(s) {files} were edited since they ran "
            "(their checksum differs from the ledger's); restore them and add a new migration",
            version=plan.changed[0].version,
        )


def _pending_status(planned: Planned) -> MigrationStatus:
    m = planned.recorded
    return MigrationStatus(version=m.version, name=m.name, state="pending", applied_at=None)


def _failed(migration: Migration, exc: psycopg.Error) -> MigrationError:
    state = f" [{exc.sqlstate}]" if exc.sqlstate else ""
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return MigrationError(
        f"{migration.path.name} failed{state}: {first}", version=migration.version
    )


def _shown(column: str, value: str | None) -> str:
    if value is None:
        return "NULL"
    if column in _MASKED_COLUMNS:
        return f"<{len(value)} characters, not shown>"
    return repr(value) if len(value) <= 60 else repr(value[:57] + "...")


@cache
def _version() -> str:
    try:
        return metadata.version("diamond-db")
    except metadata.PackageNotFoundError:  # pragma: no cover - a bare checkout
        return "dev"


def check_versions(applied: Iterable[str]) -> None:
    """Raise SchemaMismatch when the database lacks a migration this package needs.

    Versions the package does not know (a newer deploy ran them) are accepted
    with one warning: during a rolling deploy old code runs against a newer schema.
    """
    recorded = set(applied)
    missing = tuple(sorted(shipped_versions() - recorded))
    if missing:
        raise SchemaMismatch(
            missing,
            f"the database lacks migration(s) {', '.join(missing)} that this version of "
            "diamond_db needs: run `diamond-db migrate` (see `diamond-db migrate --status`)",
        )
    ahead = sorted(recorded - shipped_versions())
    if ahead:
        logger.warning(
            "the database has migration(s) %s that this version of diamond_db does not know "
            "(a newer deploy applied them); carrying on",
            ", ".join(ahead),
        )

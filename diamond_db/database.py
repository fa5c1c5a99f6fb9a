"""Database: the pools, transactions and statement routing behind every operation.

Connections are in autocommit mode, so a single-statement operation costs one
round trip; operations of several statements, and `transaction()`, run in an
explicit transaction on the primary. Statements marked `role: reader` go to
the replica pool when one is configured, unless they run inside a
transaction or through `db.primary`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Coroutine, Generator, Iterable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from pathlib import Path
from types import TracebackType, coroutine
from typing import Any, cast

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

try:  # a psycopg_pool internal: if it moves, reconnection keeps psycopg_pool's own back-off
    from psycopg_pool.pool_async import AddConnection as _AddConnection
except ImportError:  # pragma: no cover
    _AddConnection = None  # type: ignore[assignment,misc]

from ._executor import Connection, Executor, Observer, OnQuery, run_statement
from ._json import use_fast_loads
from ._resources import bootstrap_sql
from .config import UNSET, Seconds, Settings, Unset, resolve_settings
from .errors import DatabaseUnavailable
from .migrations import (
    DEFAULT_LOCK_TIMEOUT,
    DEFAULT_RETRIES,
    Migrator,
    OnNotice,
    OnProgress,
    check_versions,
)
from .operations import Operations
from .records import MigrationStatus, UnfinishedConstraint
from .registry import Registry, Role, default_registry

logger = logging.getLogger("diamond_db")


class Pool(AsyncConnectionPool[Connection]):
    """psycopg_pool's pool with two changes that bound recovery after an outage.

    - Reconnection attempts are retried at most `retry_delay` apart. psycopg_pool
      doubles the delay after each failure (1, 2, 4, 8 s ...), so after a
      restart the next attempt could come long after the server is back, past
      every caller's wait.
    - `sweep()` runs `check()` (test every idle connection, replace the dead
      ones) in the background: when one connection is found dead after a
      restart the others usually are too, and they are replaced together
      instead of one per caller.
    """

    def __init__(self, conninfo: str, *, retry_delay: float, **kwargs: Any) -> None:
        super().__init__(conninfo, **kwargs)
        self.retry_delay = retry_delay
        self._sweeper: asyncio.Task[None] | None = None
        self._prober: asyncio.Task[psycopg.OperationalError | None] | None = None
        self._returning: set[asyncio.Future[None]] = set()

    async def schedule_task(self, task: Any, delay: float) -> None:
        if _AddConnection is not None and isinstance(task, _AddConnection):
            delay = min(delay, self.retry_delay)
        await super().schedule_task(task, delay)

    def sweep(self) -> None:
        """Check every idle connection now, in the background (one sweep at a time)."""
        if not self.closed and (self._sweeper is None or self._sweeper.done()):
            self._sweeper = asyncio.create_task(self._sweep())

    @property
    def sweeping(self) -> asyncio.Task[None] | None:
        """The sweep in progress, if any (await it to know the dead ones are gone)."""
        return None if self._sweeper is None or self._sweeper.done() else self._sweeper

    async def _sweep(self) -> None:
        try:
            await self.check()
        except Exception:  # a sweep is an optimisation: never let it fail anything
            logger.warning("checking the idle connections of %s failed", self.name, exc_info=True)

    async def probe(self) -> psycopg.OperationalError | None:
        """Connect once outside the pool; the error if that fails.

        Concurrent callers share one attempt, so an exhausted pool's waiters do
        not storm the server with connections.
        """
        if self._prober is None or self._prober.done():
            self._prober = asyncio.create_task(self._probe())
        return await asyncio.shield(self._prober)

    async def _probe(self) -> psycopg.OperationalError | None:
        kwargs = self.kwargs if isinstance(self.kwargs, dict) else {}
        conninfo = self.conninfo if isinstance(self.conninfo, str) else ""
        try:
            conn = await psycopg.AsyncConnection.connect(
                conninfo, connect_timeout=kwargs.get("connect_timeout", 5)
            )
        except psycopg.OperationalError as error:
            return error
        await conn.close()
        return None

    async def put_back(self, conn: Connection) -> None:
        """`putconn`, finished even if the caller is cancelled meanwhile.

        Handing a connection to a queued client can wait for that client's lock (on
        Python 3.11 for a loop iteration), and a cancellation there loses the connection
        for good (the pool counts it). So putconn runs at once, in the caller's step,
        and only if it has to wait is the rest of it moved to a shielded task of its
        own. Under a queue that wait is rare; a task for every hand-back cost 0.6 ms
        of client CPU per operation at 32 clients (1.51 vs 0.94 ms, throughput 0.81x
        raw psycopg's instead of 1.00x, paired rounds of benchmarks/throughput.py).
        """
        returning = self.putconn(conn)
        try:
            waiting_for = returning.send(None)
        except StopIteration:
            return  # done without waiting: the common case
        task = asyncio.ensure_future(_finish(returning, waiting_for))
        self._returning.add(task)  # the loop keeps only weak references to tasks
        task.add_done_callback(self._returning.discard)
        await asyncio.shield(task)

    async def close(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109 (the base signature)
        for task in (self._sweeper, self._prober):
            if task is not None:
                task.cancel()
                with suppress(asyncio.CancelledError, Exception):
                    await task
        await super().close(timeout)


async def _finish(coro: Coroutine[Any, Any, None], waiting_for: Any) -> None:
    """Run `coro`, suspended on `waiting_for` by a step of another task, to its end."""
    await _resume(coro, waiting_for)


@coroutine
def _resume(coro: Coroutine[Any, Any, None], waiting_for: Any) -> Generator[Any, Any, None]:
    """Hand what `coro` waits for to the running task, and each result back to `coro`."""
    while True:
        try:
            try:
                sent = yield waiting_for
            except BaseException as error:  # thrown into the task: pass it on
                waiting_for = coro.throw(error)
            else:
                waiting_for = coro.send(sent)
        except StopIteration:
            return


class Database(Operations):
    """A PostgreSQL database reached through a connection pool (and optionally a replica).

    Use as `async with Database(url) as db:`; every operation is a method.
    Keyword arguments override the environment (PG_POOL_MIN, PG_POOL_MAX,
    PG_IDLE_TIMEOUT_MS, PG_CONN_TIMEOUT_MS, PG_STATEMENT_TIMEOUT_MS,
    PG_PREPARE_THRESHOLD, DIAMOND_DB_SLOW_QUERY_MS), which overrides defaults.
    """

    def __init__(
        self,
        url: str,
        *,
        read_url: str | None = None,
        min_size: int | Unset = UNSET,
        max_size: int | Unset = UNSET,
        max_idle: Seconds | Unset = UNSET,
        timeout: Seconds | Unset = UNSET,
        statement_timeout: Seconds | Unset | None = UNSET,
        prepare_threshold: int | Unset | None = UNSET,
        slow_query_threshold: Seconds | Unset = UNSET,
        on_query: OnQuery | None = None,
    ) -> None:
        self._given: Settings | None = resolve_settings(
            url,
            read_url=read_url,
            min_size=min_size,
            max_size=max_size,
            max_idle=max_idle,
            timeout=timeout,
            statement_timeout=statement_timeout,
            prepare_threshold=prepare_threshold,
            slow_query_threshold=slow_query_threshold,
        )
        self._setup(on_query)

    def _setup(self, on_query: OnQuery | None) -> None:
        self._registry = default_registry()
        self._observer = Observer(
            self._given.slow_query_threshold if self._given else 0.5, on_query
        )
        self._pool: Pool | None = None
        self._read_pool: Pool | None = None

    # -- configuration ------------------------------------------------------

    @property
    def settings(self) -> Settings:
        """The resolved settings (see diamond_db.config)."""
        assert self._given is not None
        return self._given

    # -- lifecycle ----------------------------------------------------------

    @property
    def pool(self) -> Pool:
        """The primary pool (created on first use, opened by `open()` or the first operation)."""
        if self._pool is None:
            self._pool = self._make_pool(self.settings.url, "diamond_db")
        return self._pool

    @property
    def read_pool(self) -> Pool | None:
        """The replica pool, when a read URL is configured."""
        if self._read_pool is None and self.settings.read_url:
            self._read_pool = self._make_pool(self.settings.read_url, "diamond_db-read")
        return self._read_pool

    def _make_pool(self, url: str, name: str) -> Pool:
        s = self.settings
        return Pool(
            url,
            retry_delay=min(0.5, s.timeout / 4),
            open=False,
            name=name,
            min_size=s.min_size,
            max_size=s.max_size,
            max_idle=s.max_idle,
            timeout=s.timeout,
            kwargs={
                "autocommit": True,
                "prepare_threshold": s.prepare_threshold,
                "connect_timeout": max(2, round(s.timeout)),
            },
            configure=use_fast_loads,  # json/jsonb by orjson, json.loads' exact result
            # No `check=`: its retry loop sleeps 1, 2, 4 s ... between failed checks,
            # so a pool of dead connections could not be cleared within the wait.
            # _checkout checks each connection itself and retries at once.
        )

    async def open(self) -> None:
        """Open the pool(s) and check the schema. Idempotent; operations call it when needed.

        Raises SchemaMismatch when the database lacks migrations this code
        needs (one query per open); the pools are closed again then.
        """
        fresh = self.pool.closed
        for pool in (self.pool, self.read_pool):
            if pool is not None and pool.closed:
                await pool.open(wait=False)
        if fresh:
            try:
                await self._check_schema()
            except BaseException:
                await self.close()
                raise

    async def _check_schema(self) -> None:
        """One query when the pool opens: refuse a database that lacks needed migrations.

        Not reported to on_query: it belongs to opening the pool, not to any operation.
        """
        conn = await self._checkout(self.pool)
        try:
            sql = self._registry["get_applied_versions"].sql
            try:
                row = await (await conn.execute(sql.encode())).fetchone()
            except psycopg.errors.UndefinedTable:
                row = ([],)
        finally:
            await self.pool.put_back(conn)
        applied: list[str] = row[0] if row else []
        check_versions(applied)

    async def close(self) -> None:
        """Close the pool(s); a later operation opens fresh ones."""
        pools, self._pool, self._read_pool = (self._pool, self._read_pool), None, None
        for pool in pools:
            if pool is not None:
                await pool.close()

    async def __aenter__(self) -> Database:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- schema (admin paths: their own connection, never blocked by the schema check) --

    async def bootstrap(self) -> None:
        """Apply sql/bootstrap.sql: the whole schema on an empty database, a no-op on a
        current one; any other database is refused with a hint to run `diamond-db migrate`."""
        conn = await psycopg.AsyncConnection.connect(
            self.settings.url, autocommit=True, prepare_threshold=None
        )
        async with conn:
            started = time.perf_counter()
            try:
                await conn.execute(bootstrap_sql().encode())
            except BaseException as error:
                self._observer.report("bootstrap", started, 0, error)
                raise
            self._observer.report("bootstrap", started, 0, None)

    def migrator(
        self,
        *,
        migrations_dir: str | Path | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        on_progress: OnProgress | None = None,
        on_notice: OnNotice | None = None,
    ) -> Migrator:
        """The migration runner for this database (what the CLI's `migrate` drives).

        `on_progress` gets each applied migration and its duration; `on_notice`
        each NOTICE a migration raises (such as 0006's backfill report).
        """
        return Migrator(
            self.settings.url,
            self._registry,
            self._observer,
            migrations=migrations_dir,
            lock_timeout=lock_timeout,
            retries=retries,
            on_progress=on_progress,
            on_notice=on_notice,
        )

    async def migrate(
        self,
        target: str | None = None,
        dry_run: bool = False,
        *,
        migrations_dir: str | Path | None = None,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
    ) -> list[MigrationStatus]:
        """Apply the pending migrations in order, up to and including `target`.

        Returns the status of each one applied (with `dry_run`, of each that
        would be, applying nothing). Raises MigrationError naming the migration
        that failed or was refused. Works on an unopened Database.
        """
        runner = self.migrator(
            migrations_dir=migrations_dir, lock_timeout=lock_timeout, retries=retries
        )
        return await runner.migrate(target, dry_run)

    async def migration_status(
        self, *, migrations_dir: str | Path | None = None
    ) -> list[MigrationStatus]:
        """Every known or recorded migration, in version order, with its state."""
        return await self.migrator(migrations_dir=migrations_dir).status()

    async def unvalidated_constraints(self) -> list[UnfinishedConstraint]:
        """Constraints still NOT VALID (rows violated them): `migrate` validates them once fixed."""
        plan = await self.migrator().plan()
        return [c for c in plan.unfinished if not c.validated]

    # -- connections --------------------------------------------------------

    @asynccontextmanager
    async def _acquire(self, pool: Pool) -> AsyncIterator[Connection]:
        """A connection for one operation or transaction, handed back when it ends.

        A task cancelled while it waited gets CancelledError and sends nothing, even
        when the wait swallowed the cancellation (psycopg_pool's asyncio.wait_for on
        Python 3.11, CPython gh-86296): a cancel request counted meanwhile re-raises.
        """
        task = asyncio.current_task()
        cancelling = task.cancelling() if task is not None else 0
        if pool.closed:
            await self.open()
        conn = await self._checkout(pool)
        try:
            if task is not None and task.cancelling() > cancelling:
                raise asyncio.CancelledError
            yield conn
        finally:
            if conn.broken:  # lost mid-use: its idle siblings probably died with it
                pool.sweep()
            await pool.put_back(conn)

    async def _checkout(self, pool: Pool) -> Connection:
        """A live connection within the connect timeout, or an error that says why not.

        Most of the wait goes to the pool; the rest (a fifth, at most 1 s) is
        kept to tell an unreachable server (DatabaseUnavailable) from a busy
        pool (PoolTimeout) without overrunning the timeout.
        """
        timeout = self.settings.timeout
        deadline = time.monotonic() + timeout
        try:
            return await _live_connection(pool, deadline - min(1.0, timeout / 5))
        except PoolTimeout as exc:
            unavailable = await _probe(pool, deadline, exc)
            if unavailable is not None:
                raise unavailable from unavailable.__cause__
        try:  # the server answers: the pool is busy or still reconnecting
            return await _live_connection(pool, deadline)
        except PoolTimeout:
            raise PoolTimeout(
                f"no connection free in pool {pool.name!r} (max_size={pool.max_size}) "
                f"after {timeout:.2f} s"
            ) from None

    @asynccontextmanager
    async def _connection(self, role: Role) -> AsyncIterator[Connection]:
        pool = self.read_pool if role == "reader" else None
        async with self._acquire(pool or self.pool) as conn:
            timeout = self.settings.statement_timeout
            if not timeout:
                yield conn
            else:
                limit = self._registry["set_statement_timeout"].sql
                yield cast(Connection, _Bounded(conn, limit, _milliseconds(timeout)))

    async def _limit(self, conn: Connection) -> None:
        """Bound every statement of this transaction (SET LOCAL: safe behind a pooler)."""
        timeout = self.settings.statement_timeout
        if timeout:
            statement = self._registry["set_statement_timeout"]
            params = {"timeout": _milliseconds(timeout)}
            await run_statement(self._observer, statement, conn, params)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """All operations on the yielded `tx` commit together, or none does."""
        async with self._acquire(self.pool) as conn, conn.transaction():
            await self._limit(conn)
            yield Transaction(conn, self._registry, self._observer)

    def _atomic(self) -> AbstractAsyncContextManager[Executor]:
        return self.transaction()

    @property
    def primary(self) -> Operations:
        """The same operations with every read on the primary (read-your-writes)."""
        return _Primary(self)


class Transaction(Operations):
    """Operations bound to one connection inside one transaction."""

    def __init__(self, conn: Connection, registry: Registry, observer: Observer) -> None:
        self._conn = conn
        self._registry = registry
        self._observer = observer

    @property
    def connection(self) -> Connection:
        """The transaction's connection, for statements of your own."""
        return self._conn

    @asynccontextmanager
    async def _connection(self, role: Role) -> AsyncIterator[Connection]:
        yield self._conn

    @asynccontextmanager
    async def _atomic(self) -> AsyncIterator[Executor]:
        async with self._conn.transaction():  # a savepoint inside the outer transaction
            yield self


class _Primary(Operations):
    """A view of a Database that sends reads to the primary too."""

    def __init__(self, database: Database) -> None:
        self._database = database
        self._registry = database._registry
        self._observer = database._observer

    def _connection(self, role: Role) -> AbstractAsyncContextManager[Connection]:
        return self._database._connection("writer")

    def _atomic(self) -> AbstractAsyncContextManager[Executor]:
        return self._database.transaction()


# -- checkout, diagnosis and the statement timeout -------------------------------


def _is_alive(conn: Connection) -> bool:
    """Whether an idle pooled connection still works, without a round trip.

    A server that restarts or terminates a backend sends it an error and
    closes the socket. Reading what is pending surfaces that at once: the
    first read may only take the error, the second then sees the closed socket.
    """
    pgconn = conn.pgconn
    try:
        for _ in range(2):
            if pgconn.status != psycopg.pq.ConnStatus.OK:
                return False
            pgconn.consume_input()
    except psycopg.OperationalError:
        return False
    idle = psycopg.pq.TransactionStatus.IDLE
    return pgconn.status == psycopg.pq.ConnStatus.OK and pgconn.transaction_status == idle


async def _live_connection(pool: Pool, deadline: float) -> Connection:
    """Check connections out until a live one comes, by the deadline (else PoolTimeout).

    A dead one is handed back (the pool opens a replacement at once) and
    triggers a sweep of the idle ones; the next try follows immediately, not
    after psycopg_pool's back-off.
    """
    while (remaining := deadline - time.monotonic()) > 0:
        conn = await pool.getconn(timeout=remaining)
        if _is_alive(conn):
            return conn
        pool.sweep()
        await conn.close()
        await pool.putconn(conn)
    raise PoolTimeout(f"no live connection from pool {pool.name!r} in time")


async def _probe(pool: Pool, deadline: float, waited: PoolTimeout) -> DatabaseUnavailable | None:
    """DatabaseUnavailable if the server cannot be reached by the deadline, else None."""
    conninfo = pool.conninfo if isinstance(pool.conninfo, str) else ""
    info = conninfo_to_dict(conninfo)
    host, port = str(info.get("host") or "localhost"), str(info.get("port") or "5432")
    cause: BaseException
    try:
        async with asyncio.timeout(max(deadline - time.monotonic(), 0.05)):
            error = await pool.probe()
    except TimeoutError:
        message, cause = "no answer within the connect timeout", waited
    else:
        if error is None:
            return None
        message, cause = str(error).strip().splitlines()[0], error
    unavailable = DatabaseUnavailable(host, port, message)
    unavailable.__cause__ = cause
    return unavailable


def _milliseconds(seconds: float) -> str:
    return str(max(1, round(seconds * 1000)))


class _Bounded:
    """A connection whose every statement runs under the statement timeout, in one round trip.

    Each execute sends `set_config('statement_timeout', ..., true)`, the
    statement and one Sync in a pipeline. The extended protocol runs all
    that precedes a Sync in one implicit transaction, so the transaction-local
    setting bounds the statement and ends with it: no BEGIN/COMMIT round
    trips, and no session state for a transaction-mode pooler to leak.
    """

    __slots__ = ("_conn", "_limit", "_params")

    def __init__(self, conn: Connection, limit_sql: str, milliseconds: str) -> None:
        self._conn = conn
        self._limit = limit_sql.encode()
        self._params = {"timeout": milliseconds}

    def cursor(self, *args: Any, **kwargs: Any) -> _BoundedCursor:
        return _BoundedCursor(self, self._conn.cursor(*args, **kwargs))

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        return await self.cursor().execute(query, params, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


class _BoundedCursor:
    """A cursor of a _Bounded connection (see there); everything else is the real cursor's."""

    __slots__ = ("_bounded", "_cursor")

    def __init__(self, bounded: _Bounded, cursor: Any) -> None:
        self._bounded = bounded
        self._cursor = cursor

    async def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        conn = self._bounded._conn
        async with conn.pipeline():
            await conn.execute(self._bounded._limit, self._bounded._params)
            await self._cursor.execute(query, params, **kwargs)
        return self._cursor  # results arrived with the pipeline's Sync

    async def executemany(self, query: Any, params_seq: Iterable[Mapping[str, Any]]) -> None:
        conn = self._bounded._conn
        async with conn.pipeline():
            await conn.execute(self._bounded._limit, self._bounded._params)
            await self._cursor.executemany(query, params_seq)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    async def __aenter__(self) -> _BoundedCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._cursor.close()

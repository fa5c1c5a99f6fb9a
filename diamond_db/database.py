"""Database: the pools, transactions and statement routing behind every operation.

Connections are in autocommit mode, so a single-statement operation costs one
round trip; operations of several statements, and `transaction()`, run in an
explicit transaction on the primary. Statements marked `role: reader` go to
the replica pool when one is configured, unless they run inside a
transaction or through `db.primary`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from ._executor import Connection, Executor, Observer, OnQuery, run_statement
from ._resources import bootstrap_sql
from .config import UNSET, Seconds, Settings, Unset, resolve_settings
from .errors import DatabaseUnavailable
from .operations import Operations
from .registry import Registry, Role, default_registry

logger = logging.getLogger("diamond_db")

Pool = AsyncConnectionPool[Connection]


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
        return AsyncConnectionPool(
            url,
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
            check=_check_alive,
        )

    async def open(self) -> None:
        """Open the pool(s). Idempotent; operations call it themselves when needed."""
        for pool in (self.pool, self.read_pool):
            if pool is not None and pool.closed:
                await pool.open(wait=False)

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

    async def bootstrap(self) -> None:
        """Apply sql/bootstrap.sql (idempotent: creates what is missing, seeds an empty table)."""
        async with self._acquire(self.pool) as conn:
            started = time.perf_counter()
            await conn.execute(bootstrap_sql().encode())
            self._observer.report("bootstrap", started, 0, None)

    # -- connections --------------------------------------------------------

    @asynccontextmanager
    async def _acquire(self, pool: Pool) -> AsyncIterator[Connection]:
        if pool.closed:
            await self.open()
        try:
            conn = await pool.getconn()
        except PoolTimeout as exc:
            raise await self._diagnose(pool, exc) from exc
        try:
            yield conn
        finally:
            await pool.putconn(conn)

    async def _diagnose(self, pool: Pool, exc: PoolTimeout) -> PoolTimeout:
        """Tell an unreachable server (DatabaseUnavailable) from an exhausted pool."""
        if pool.get_stats().get("pool_size", 0) >= (pool.max_size or 0):
            return exc  # every connection is alive and busy: a genuine pool timeout
        conninfo = pool.conninfo if isinstance(pool.conninfo, str) else self.settings.url
        info = conninfo_to_dict(conninfo)
        host, port = str(info.get("host") or "localhost"), str(info.get("port") or "5432")
        try:
            probe = await psycopg.AsyncConnection.connect(conninfo, connect_timeout=2)
        except psycopg.OperationalError as error:
            unavailable = DatabaseUnavailable(host, port, str(error).strip().splitlines()[0])
            unavailable.__cause__ = error
            return unavailable
        await probe.close()
        return exc

    @asynccontextmanager
    async def _connection(self, role: Role) -> AsyncIterator[Connection]:
        pool = self.read_pool if role == "reader" else None
        async with self._acquire(pool or self.pool) as conn:
            if self.settings.statement_timeout is None:
                yield conn
            else:
                async with conn.transaction():
                    await self._limit(conn)
                    yield conn

    async def _limit(self, conn: Connection) -> None:
        """Bound every statement of this transaction (SET LOCAL: safe behind a pooler)."""
        timeout = self.settings.statement_timeout
        if timeout is not None:
            statement = self._registry["set_statement_timeout"]
            milliseconds = str(round(timeout * 1000))
            await run_statement(self._observer, statement, conn, {"timeout": milliseconds})

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


async def _check_alive(conn: Connection) -> None:
    """Pool check on checkout, without a round trip.

    A server that restarts or terminates a backend sends it a notice and
    closes the socket; reading whatever is pending on the idle connection
    surfaces that at once, so a dead connection is discarded before use.
    """
    pgconn = conn.pgconn
    if pgconn.status != psycopg.pq.ConnStatus.OK:
        raise psycopg.OperationalError("connection is broken")
    pgconn.consume_input()  # raises OperationalError when the server closed the socket
    if pgconn.status != psycopg.pq.ConnStatus.OK:
        raise psycopg.OperationalError("connection is broken")

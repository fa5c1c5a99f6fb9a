"""Running named statements: the one path every operation's SQL takes.

`Executor` is the base of the operation mixins. It looks a statement up in
the registry, asks its subclass for a connection suited to the statement's
role (a Database picks a pool; a Transaction has its one connection), runs it
through aiosql, maps rows to the statement's record and reports the timing.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

from psycopg import AsyncConnection, sql
from psycopg.rows import AsyncRowFactory

from ._rows import record_row
from .records import QueryEvent
from .registry import Registry, RegistryError, Role, Statement

logger = logging.getLogger("diamond_db")

T = TypeVar("T")
OnQuery = Callable[[QueryEvent], None]
Connection = AsyncConnection[Any]


class Observer:
    """Logs each statement's name, duration and row count; never its parameters."""

    __slots__ = ("on_query", "slow_threshold")

    def __init__(self, slow_threshold: float, on_query: OnQuery | None) -> None:
        self.slow_threshold = slow_threshold
        self.on_query = on_query

    def report(self, name: str, started: float, rows: int, error: BaseException | None) -> None:
        duration = time.perf_counter() - started
        if error is not None:
            logger.debug("%s failed after %.2f ms: %s", name, duration * 1e3, type(error).__name__)
        elif duration >= self.slow_threshold:
            logger.warning("slow statement %s: %.1f ms, %d rows", name, duration * 1e3, rows)
        else:
            logger.debug("%s: %.2f ms, %d rows", name, duration * 1e3, rows)
        if self.on_query is not None:
            try:
                self.on_query(QueryEvent(name=name, duration=duration, rows=rows, error=error))
            except Exception:  # a broken metrics hook must not fail a purchase
                logger.exception("on_query callback failed for %s", name)


class _RowsAs:
    """Hands aiosql a connection whose cursors build records instead of tuples."""

    __slots__ = ("_conn", "_factory")

    def __init__(self, conn: Connection, factory: AsyncRowFactory[Any]) -> None:
        self._conn = conn
        self._factory = factory

    async def execute(self, query: str, params: Any = None) -> Any:
        return await self._conn.cursor(row_factory=self._factory).execute(query, params)

    def cursor(self) -> Any:
        return self._conn.cursor(row_factory=self._factory)


_factories: dict[type[Any], AsyncRowFactory[Any]] = {}


def _factory(record: type[Any]) -> AsyncRowFactory[Any]:
    factory = _factories.get(record)
    if factory is None:
        factory = _factories[record] = record_row(record)
    return factory


def _count(kind: str, result: Any) -> int:
    if kind in ("rows", "many"):
        return len(result) if isinstance(result, list) else 0
    if kind == "rowcount":
        return int(result) if isinstance(result, int) and result > 0 else 0
    return 0 if result is None else 1


class Executor(ABC):
    """Base of everything that runs operations: Database, Transaction, primary views."""

    _registry: Registry
    _observer: Observer

    @abstractmethod
    def _connection(self, role: Role) -> AbstractAsyncContextManager[Connection]:
        """A connection for one statement of the given role."""

    @abstractmethod
    def _atomic(self) -> AbstractAsyncContextManager[Executor]:
        """An executor whose statements all run in one transaction on the primary."""

    async def _run(self, name: str, params: Mapping[str, Any] | Sequence[Any]) -> Any:
        statement = self._registry[name]
        async with self._connection(statement.role) as conn:
            return await run_statement(self._observer, statement, conn, params)

    async def _one(self, record: type[T], name: str, **params: Any) -> T | None:
        """Run a statement returning at most one `record`."""
        _expect(self._registry[name], record)
        result: T | None = await self._run(name, params)
        return result

    async def _all(self, record: type[T], name: str, **params: Any) -> list[T]:
        """Run a statement returning a list of `record`."""
        _expect(self._registry[name], record)
        result: list[T] = await self._run(name, params)
        return result

    async def _value(self, name: str, **params: Any) -> Any:
        """Run a statement returning one value (the first column of its one row)."""
        return await self._run(name, params)

    async def _rowcount(self, name: str, **params: Any) -> int:
        """Run a statement and return how many rows it changed."""
        result: int = await self._run(name, params)
        return max(result, 0)

    async def _pipelined(self, name: str, params_seq: Iterable[Mapping[str, Any]]) -> list[Any]:
        """Run a statement once per parameter set in one pipeline; every set's rows, as tuples.

        psycopg's executemany: the parameter sets are built lazily, so the client
        prepares the next while the server runs this one. Meant for a transaction.
        """
        statement = self._registry[name]
        async with self._connection(statement.role) as conn:
            started = time.perf_counter()
            rows: list[Any] = []
            try:
                cursor = conn.cursor()
                await cursor.executemany(statement.sql.encode(), params_seq, returning=True)
                while True:
                    rows += await cursor.fetchall()
                    if not cursor.nextset():
                        break
            except BaseException as error:
                self._observer.report(name, started, 0, error)
                raise
            self._observer.report(name, started, len(rows), None)
            return rows

    async def _mapped(self, row_factory: AsyncRowFactory[T], name: str, **params: Any) -> list[T]:
        """Run a statement whose rows `row_factory` builds (a record cannot say "no row")."""
        statement = self._registry[name]
        async with self._connection(statement.role) as conn:
            result: list[T] = await run_statement(
                self._observer, statement, conn, params, row_factory
            )
            return result

    async def _composed(
        self,
        name: str,
        role: Role,
        sql: str,
        params: Mapping[str, Any],
        row_factory: AsyncRowFactory[T],
    ) -> list[T]:
        """Run a statement composed at run time (the search), observed like the others.

        `sql` must come from the composer's reviewed catalogue, never from a caller.
        """
        async with self._connection(role) as conn:
            started = time.perf_counter()
            try:
                cursor = conn.cursor(row_factory=row_factory)
                await cursor.execute(sql.encode(), params)  # catalogue SQL only
                rows = await cursor.fetchall()
            except BaseException as error:
                self._observer.report(name, started, 0, error)
                raise
            self._observer.report(name, started, len(rows), None)
            return rows

    async def _utility(self, name: str, statement: sql.Composed) -> None:
        """Run a utility statement composed at run time (a catalog-found table name), observed.

        Only the operations' own reviewed templates, with identifiers from the catalog.
        """
        async with self._connection("writer") as conn:
            started = time.perf_counter()
            try:
                await conn.execute(statement)
            except BaseException as error:
                self._observer.report(name, started, 0, error)
                raise
            self._observer.report(name, started, 0, None)


def _expect(statement: Statement, record: type[Any]) -> None:
    if statement.record is not record:
        raise RegistryError(
            f"{statement.name} maps to {statement.record!r} in {statement.domain}.sql, "
            f"but the facade expects {record.__name__}"
        )


async def run_statement(
    observer: Observer,
    statement: Statement,
    conn: Connection,
    params: Any,
    row_factory: AsyncRowFactory[Any] | None = None,
) -> Any:
    """Run one registry statement on `conn`, observed.

    `params` is a mapping of the statement's parameters, or for an
    executemany (`*!`) statement a sequence of such mappings. Rows become
    `row_factory`'s, else the statement's record, else tuples.
    """
    if row_factory is None and statement.record is not None:
        row_factory = _factory(statement.record)
    target: Any = conn if row_factory is None else _RowsAs(conn, row_factory)
    started = time.perf_counter()
    result: Any = None
    try:
        if statement.kind == "rows":
            result = [row async for row in statement.call(target, **params)]
        elif statement.kind == "many":
            result = await statement.call(target, params)
        else:
            result = await statement.call(target, **params)
    except BaseException as error:
        observer.report(statement.name, started, 0, error)
        raise
    observer.report(statement.name, started, _count(statement.kind, result), None)
    return result

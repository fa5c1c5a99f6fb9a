"""pytest plugin: bootstrapped throw-away databases for an application's tests.

Registered through the `pytest11` entry point, so it is always loaded and
inert until a fixture is used. The server comes from the same resolver as
the CLI demo (diamond_db._server): DIAMOND_DB_TEST_URL, else Docker, else the
local PostgreSQL binaries.

Fixtures:
- `diamond_db_server` (session): the resolved Server.
- `diamond_db_url` (session): URL of a database bootstrapped from sql/bootstrap.sql.
- `diamond_db` (function, async): an open Database on it, emptied before each test.

For fault, replica and pooler tests (each skips with the reason when it cannot run):
- `diamond_db_cluster` (module): a separate local cluster the test may stop and restart,
  with a bootstrapped database (`LocalDatabase`).
- `diamond_db_replica` (module): a local primary plus a streaming hot standby of it
  (`ReplicatedDatabase`; `wait_for_replay()` waits until the standby caught up).
- `diamond_db_pgbouncer_url` (module): the session database through a PgBouncer in
  transaction pooling mode.
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ._server import (
    TEST_URL_VARIABLE,
    LocalCluster,
    PgBouncer,
    Server,
    ServerUnavailable,
    find_bindir,
    resolve_server,
)
from .database import Database
from .registry import default_registry


@pytest.fixture(scope="session")
def diamond_db_server() -> Iterator[Server]:
    """A PostgreSQL server for this test session (started here if need be)."""
    server = resolve_server()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def diamond_db_url(diamond_db_server: Server) -> Iterator[str]:
    """A fresh database with the diamond_db schema, dropped after the session."""
    with diamond_db_server.database() as url:
        yield url


def reset_database(url: str) -> None:
    """Empty every table (not the migrations ledger) and re-seed what bootstrap seeds."""
    with psycopg.connect(url, autocommit=True) as conn, conn.transaction():
        conn.execute(default_registry()["reset_all_tables"].sql.encode())


@dataclass
class LocalDatabase:
    """A bootstrapped database on a local cluster this process controls."""

    cluster: LocalCluster
    url: str


@dataclass
class ReplicatedDatabase:
    """A bootstrapped database on a local primary, and the same database on its standby."""

    primary: LocalCluster
    replica: LocalCluster
    url: str
    read_url: str

    def wait_for_replay(self, timeout: float = 30.0) -> None:
        """Block until the standby has replayed everything the primary has written so far."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            # The insert position, not pg_current_wal_lsn() (the write position): with
            # synchronous_commit off a commit can be inserted but not yet written.
            row = conn.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.read_url, autocommit=True) as conn:
            while True:
                done = conn.execute(
                    "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (row[0],)
                ).fetchone()
                if done is not None and done[0]:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the standby did not replay up to {row[0]}")
                time.sleep(0.005)  # polling the standby's replay position


def _local_cluster(purpose: str) -> LocalCluster:
    """A new local cluster, or a skip saying why this kind of test cannot run here."""
    if os.environ.get(TEST_URL_VARIABLE, "").strip():
        pytest.skip(
            f"{purpose} need a PostgreSQL server the test controls (stop, restart, replicate); "
            f"they do not run against {TEST_URL_VARIABLE}"
        )
    try:
        find_bindir()
        return LocalCluster.create()
    except ServerUnavailable as exc:
        pytest.skip(f"{purpose} need the local PostgreSQL server binaries: {exc}")


@pytest.fixture(scope="module")
def diamond_db_cluster() -> Iterator[LocalDatabase]:
    """A separate local cluster the test may stop and restart, with a bootstrapped database."""
    cluster = _local_cluster("fault tests")
    try:
        with _on(cluster).database() as url:
            yield LocalDatabase(cluster, url)
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def diamond_db_replica() -> Iterator[ReplicatedDatabase]:
    """A local primary with a bootstrapped database and a streaming standby (pg_basebackup -R)."""
    primary = _local_cluster("replica tests")
    try:
        with _on(primary).database() as url:
            replica = primary.replicate()
            try:
                read_url = make_conninfo(url, port=str(replica.port))
                yield ReplicatedDatabase(primary, replica, url, read_url)
            finally:
                replica.destroy()
    finally:
        primary.destroy()


def _on(cluster: LocalCluster) -> Server:
    """A Server view of a cluster the fixture owns (its teardown destroys the cluster)."""
    return Server(admin_url=cluster.url, kind="local", cluster=cluster)


@pytest.fixture(scope="module")
def diamond_db_pgbouncer_url(diamond_db_server: Server, diamond_db_url: str) -> Iterator[str]:
    """The session database through PgBouncer (pool_mode=transaction)."""
    try:
        bouncer = PgBouncer.start(diamond_db_server.admin_url)
    except ServerUnavailable as exc:
        pytest.skip(str(exc))
    try:
        yield bouncer.url(diamond_db_url)
    finally:
        bouncer.stop()


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - only the sync fixtures then
    pass
else:

    @pytest_asyncio.fixture
    async def diamond_db(diamond_db_url: str) -> AsyncIterator[Database]:
        """An open Database on the session's database, emptied before the test."""
        reset_database(diamond_db_url)
        async with Database(diamond_db_url, min_size=1) as db:
            yield db

"""pytest plugin: bootstrapped throw-away databases for an application's tests.

Registered through the `pytest11` entry point, so it is always loaded and
inert until a fixture is used. The server comes from the same resolver as
the CLI demo (diamond_db._server): DIAMOND_DB_TEST_URL, else Docker, else the
local PostgreSQL binaries.

Fixtures:
- `diamond_db_server` (session): the resolved Server.
- `diamond_db_url` (session): URL of a database bootstrapped from sql/bootstrap.sql.
- `diamond_db` (function, async): an open Database on it, emptied before each test.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import psycopg
import pytest

from ._resources import bootstrap_sql
from ._server import Server, resolve_server
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
    url = diamond_db_server.create_database()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(bootstrap_sql().encode())
        yield url
    finally:
        diamond_db_server.drop_database(url)


def reset_database(url: str) -> None:
    """Empty every table and re-seed what bootstrap seeds."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(default_registry()["truncate_all_tables"].sql.encode())
        conn.execute(bootstrap_sql().encode())


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

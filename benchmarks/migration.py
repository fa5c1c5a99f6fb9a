"""Scenario: a schema change on the live catalogue while 8 clients search.

A migration adds a column to `diamonds` (one transaction: a brief ACCESS
EXCLUSIVE lock, no rewrite) and builds an index CONCURRENTLY (a
`transaction: none` file), through `db.migrate()` with the shipped runner.
Eight clients run the six benchmark searches (count capped) in closed loops:
first for a fixed time with no migration ("before"), then for as long as the
migration runs ("during"). Reported: each phase's latencies, failed searches,
the migration's duration and the longest lock wait its watchdog saw. The
column, the index and the two ledger rows are removed afterwards, so the
cached database stays as it was built.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Final

import psycopg

from diamond_db import DiamondSearch
from diamond_db._resources import data_dir

from .plan import Bench
from .search import QUERIES
from .stats import Case, Measured

SCENARIO: Final = "migration"
CLIENTS: Final = 8
COLUMN: Final = "bench_migration_note"
INDEX: Final = "diamonds_bench_migration_idx"
ADD_COLUMN: Final = f"""-- 9001 bench add column: a nullable column without default (catalog only).
ALTER TABLE diamonds ADD COLUMN {COLUMN} TEXT;
"""
ADD_INDEX: Final = f"""-- 9002 bench index: an index on a million live diamonds, built concurrently.
-- transaction: none

CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX}
ON diamonds (certificate_number, {COLUMN}) WHERE status = 'active';
"""
CLEANUP: Final = (
    f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}",
    f"ALTER TABLE diamonds DROP COLUMN IF EXISTS {COLUMN}",
    "DELETE FROM schema_migrations WHERE version IN ('9001', '9002')",
)


class Clients:
    """Closed-loop searchers; each latency is tagged with the phase it started in."""

    def __init__(self, bench: Bench) -> None:
        self.bench = bench
        self.phase = "before"
        self.latencies: dict[str, list[float]] = {"before": [], "during": []}
        self.failures: dict[str, list[str]] = {"before": [], "during": []}
        self.searches = [DiamondSearch(**q, count="capped") for q in QUERIES.values()]
        self._stop = asyncio.Event()

    async def client(self, number: int) -> None:
        i = number
        while not self._stop.is_set():
            phase = self.phase
            started = time.perf_counter()
            try:
                await self.bench.db.search_diamonds(self.searches[i % len(self.searches)])
            except Exception as exc:  # counted: the target is zero failed searches
                self.failures[phase].append(f"{type(exc).__name__}: {exc}")
            else:
                self.latencies[phase].append(time.perf_counter() - started)
            i += 1

    def stop(self) -> None:
        self._stop.set()


async def run(bench: Bench) -> None:
    """Before, then during the migration; one case with both phases."""
    folder = Path(tempfile.mkdtemp(prefix="bench_migrations_"))
    shutil.copytree(data_dir("sql") / "migrations", folder, dirs_exist_ok=True)
    (folder / "9001_bench_add_column.sql").write_text(ADD_COLUMN)
    (folder / "9002_bench_index.sql").write_text(ADD_INDEX)
    clients = Clients(bench)
    tasks = [asyncio.create_task(clients.client(n)) for n in range(CLIENTS)]
    try:
        await asyncio.sleep(bench.plan.migration_baseline)  # a fixed-length "before" phase
        clients.phase = "during"
        runner = bench.db.migrator(migrations_dir=folder, lock_timeout=5.0, retries=3)
        started = time.perf_counter()
        applied = await runner.migrate()
        took = time.perf_counter() - started
    finally:
        clients.stop()
        await asyncio.gather(*tasks)
        await _cleanup(bench.url)
        shutil.rmtree(folder, ignore_errors=True)
    before = Measured("before", clients.latencies["before"])
    during = Measured("during", clients.latencies["during"])
    case = Case(
        SCENARIO,
        f"{CLIENTS} clients searching during a migration",
        {"before": before, "during": during},
    )
    case.ratios["p95 during/before"] = during.p95 / before.p95
    case.info.update(
        migration_seconds=took,
        applied=[s.version for s in applied],
        longest_lock_wait_seconds=runner.longest_wait,
        lock_wait_samples=runner.wait_samples,
        failed_searches={k: len(v) for k, v in clients.failures.items()},
        failure_examples=[*clients.failures["before"][:3], *clients.failures["during"][:3]],
    )
    bench.add(case)
    bench.console.print(
        f"  migration {', '.join(case.info['applied'])} took {took:.1f} s; longest lock wait "
        f"{runner.longest_wait * 1e3:.0f} ms; searches before {len(before.samples)}, during "
        f"{len(during.samples)}, failed {sum(case.info['failed_searches'].values())}"
    )


async def _cleanup(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        for statement in CLEANUP:
            await conn.execute(statement.encode())

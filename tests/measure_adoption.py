"""Measure sql/migrations/adopt/0001_from_typescript.sql on a large TypeScript-era database.

    python tests/measure_adoption.py [--diamonds 1000000] [--raw N] [--live]

Builds a TypeScript-era database (tests/ts_era.py) on a throw-away server (the resolver of
diamond_db._server: DIAMOND_DB_TEST_URL, Docker, or the local binaries), runs the adoption one
statement per round trip as the runner does (lock timeout set), then the runner's finalize
(VALIDATE, SET NOT NULL). For each step it prints the duration, the rows of the step's table
and their rate (the figure of the step's `-- cost:` line), and the table locks its backend
held (sampled every few ms from pg_locks). With --live, a client keeps reading and updating
diamonds meanwhile; its worst latency per step shows whether the step blocked it.
Not a test: it takes minutes and GBs.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
import test_adoption_sql as adoption
import ts_era

from diamond_db._server import resolve_server


@dataclass
class Watch:
    """What another backend did while a step ran: its table locks, a live client's latency."""

    pid: int
    url: str
    locks: set[tuple[str, str, bool]] = field(default_factory=set)
    worst_ms: float = 0.0
    client_ops: int = 0
    stop: threading.Event = field(default_factory=threading.Event)

    def sample_locks(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                rows = conn.execute(
                    "SELECT relation::regclass::text, mode, granted FROM pg_locks "
                    "WHERE pid = %s AND locktype = 'relation' "
                    "AND relation IN (SELECT oid FROM pg_class WHERE relkind = 'r' "
                    "AND relnamespace = 'public'::regnamespace)",
                    (self.pid,),
                ).fetchall()
                self.locks.update((str(r), str(m), bool(g)) for r, m, g in rows)
                time.sleep(0.003)  # sampling interval

    def live_client(self, ids: Sequence[Any]) -> None:
        rng = random.Random(1)
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.stop.is_set():
                started = time.perf_counter()
                diamond = rng.choice(ids)
                conn.execute("SELECT * FROM diamonds WHERE id = %s", (diamond,)).fetchone()
                conn.execute(
                    "UPDATE diamonds SET updated_at = updated_at WHERE id = %s", (diamond,)
                )
                elapsed = (time.perf_counter() - started) * 1000
                self.worst_ms = max(self.worst_ms, elapsed)
                self.client_ops += 1
                time.sleep(0.005)  # a modest, steady client


def rows_of(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", (table,)
    ).fetchone()
    return int(row[0]) if row else 0


def describe(statement: str) -> tuple[str, str, str]:
    """(first comment line, locks line, cost line) of a step."""
    comment = adoption.step_comment(statement)
    first = comment[0].removeprefix("-- ")[:70] if comment else statement[:70]
    locks = next((c for c in comment if c.startswith("-- locks:")), "")
    cost = next((c for c in comment if c.startswith("-- cost:")), "-- cost: none")
    return first, locks, cost


def timed(
    url: str, conn: psycopg.Connection[Any], statement: str, ids: Sequence[Any], live: bool
) -> tuple[float, Watch]:
    watch = Watch(pid=conn.info.backend_pid, url=url)
    threads = [threading.Thread(target=watch.sample_locks)]
    if live:
        threads.append(threading.Thread(target=watch.live_client, args=(ids,)))
    for thread in threads:
        thread.start()
    started = time.perf_counter()
    try:
        conn.execute(statement.encode())
    finally:
        elapsed = time.perf_counter() - started
        watch.stop.set()
        for thread in threads:
            thread.join()
    return elapsed, watch


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--diamonds", type=int, default=1_000_000)
    parser.add_argument("--raw", type=int, default=None, help="raw rows (default: --diamonds)")
    parser.add_argument("--payload-bytes", type=int, default=1_200)
    parser.add_argument("--live", action="store_true", help="a client reads/updates meanwhile")
    args = parser.parse_args(argv)
    server = resolve_server()
    try:
        with server.database("adopt_measure", bootstrap=False) as url:
            measure(url, args)
    finally:
        server.close()


def measure(url: str, args: argparse.Namespace) -> None:
    with adoption.connect(url) as conn:
        ts_era.create_ts_schema(conn)
        started = time.perf_counter()
        counts = ts_era.fill_ts_data(
            conn, diamonds=args.diamonds, raw_rows=args.raw, payload_bytes=args.payload_bytes
        )
        ts_era.insert_legacy_nulls(conn)
        print(f"filled in {time.perf_counter() - started:.0f} s: {counts}")
        sizes = conn.execute(
            "SELECT relname, pg_size_pretty(pg_table_size(oid)), "
            "pg_size_pretty(pg_indexes_size(oid)) FROM pg_class "
            "WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY 1"
        ).fetchall()
        print("table / indexes sizes:", sizes)
        ids = [r[0] for r in conn.execute("SELECT id FROM diamonds LIMIT 20000")]
        conn.execute("CHECKPOINT")
        total = 0.0
        print(f"{'step':<72} {'s':>8} {'rows':>9} {'rows/s':>10} worst-client-ms  locks")
        for statement in adoption.adoption_statements():
            first, _, cost = describe(statement)
            table = cost.split()[2] if cost != "-- cost: none" else None
            rows = rows_of(conn, table) if table else 0
            elapsed, watch = timed(url, conn, statement, ids, args.live)
            total += elapsed
            rate = f"{rows / elapsed:,.0f}" if table and elapsed > 0 else "-"
            locks = sorted({f"{m}({r}){'' if g else ' WAITED'}" for r, m, g in watch.locks})
            live = f"{watch.worst_ms:8.1f}/{watch.client_ops}" if args.live else "-"
            print(f"{first:<72} {elapsed:8.3f} {rows:>9} {rate:>10} {live:>15}  {locks}")
        print(f"file total {total:.1f} s")
        for table, probe in (
            ("hold_history", "(diamond_id, created_at DESC)"),
            ("purchase_history", "(diamond_id)"),
        ):
            started = time.perf_counter()
            conn.execute(f"CREATE INDEX CONCURRENTLY adopt_probe ON {table} {probe}".encode())
            elapsed = time.perf_counter() - started
            conn.execute(b"DROP INDEX CONCURRENTLY adopt_probe")
            rows = rows_of(conn, table)
            print(f"probe: index build on {table}: {elapsed:.3f} s, {rows / elapsed:,.0f} rows/s")
        started = time.perf_counter()
        assert adoption.finalize(url) == {}
        print(f"finalize total {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()

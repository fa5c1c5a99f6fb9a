"""The benchmark's server and its database of N synthetic diamonds, built once and reused.

Server: DATABASE_URL's server when that is set (the benchmark creates its own
databases there, named diamond_db_bench_*, and never writes into DATABASE_URL's
database); otherwise the library's resolver (diamond_db._server), in its
persistent form: a LocalCluster made exactly like the tests' (initdb, same
settings), kept under a cache folder and restarted on each run, so a
million-row database is built once. With DIAMOND_DB_TEST_URL set, or without
local PostgreSQL binaries (Docker), resolve_server()'s throw-away server is
used and the database is built for that run only.

Database: diamond_db_bench_<rows>_<seed>, bootstrapped and filled through the
library's own seeding path (diamond_db.synthetic.seed_diamonds: synthetic
inventory into upsert_diamonds batches, as `diamond-db seed` does), then
VACUUM ANALYZE. What it holds is written in its COMMENT (rows, seed, a
fingerprint of the generator, build time); a database whose comment does not
match is rebuilt. The schema is not part of the key: a reused database is
brought current by the library's own migration runner (db.migrate(), then VACUUM
ANALYZE if anything was applied), so a schema change costs its migrations at
this size, not a rebuild, and the migrations are exercised on a full table.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg.conninfo import make_conninfo
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from diamond_db import Database, synthetic
from diamond_db._server import (
    TEST_URL_VARIABLE,
    LocalCluster,
    Server,
    ServerUnavailable,
    _free_port,
    find_bindir,
    resolve_server,
)

from . import baselines
from .memory import PeakWindow

CACHE_VARIABLE: Final = "DIAMOND_DB_BENCH_DIR"
SEED_BATCH: Final = 5_000  # diamonds per upsert_diamonds call, as `diamond-db seed`
# Added to the tests' cluster settings: the million-row build is one long write.
BENCH_SETTINGS: Final = {"max_wal_size": "'4GB'", "maintenance_work_mem": "'256MB'"}


def cache_dir() -> Path:
    """Where the persistent cluster lives (DIAMOND_DB_BENCH_DIR overrides).

    As root the server runs as `postgres`, which cannot enter /root: /var/tmp then.
    """
    explicit = os.environ.get(CACHE_VARIABLE, "").strip()
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/var/tmp/diamond_db_bench")
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(base) / "diamond_db" / "bench"


@contextlib.contextmanager
def bench_server() -> Iterator[Server]:
    """The server to benchmark on (see the module docstring); stopped afterwards if ours."""
    url = os.environ.get("DATABASE_URL", "").strip()
    if url:
        yield Server(admin_url=url, kind="DATABASE_URL")
        return
    local = not os.environ.get(TEST_URL_VARIABLE, "").strip()
    try:
        find_bindir()
    except ServerUnavailable:
        local = False
    if not local:
        server = resolve_server()
        try:
            yield server
        finally:
            server.close()
        return
    with _exclusive(cache_dir() / "lock"):  # one run at a time owns the cached cluster
        cluster = _persistent_cluster(cache_dir() / "cluster")
        try:
            yield Server(
                admin_url=cluster.url, kind=f"local cluster in {cluster.datadir}", cluster=cluster
            )
        finally:
            with contextlib.suppress(ServerUnavailable):
                cluster.stop()


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path`; a concurrent run waits here instead of stopping ours."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _persistent_cluster(folder: Path) -> LocalCluster:
    """The cached cluster, made on first use by LocalCluster.create() and moved into `folder`."""
    data = folder / "data"
    bindir = find_bindir()
    version = (data / "PG_VERSION").read_text().strip() if (data / "PG_VERSION").exists() else None
    if version is None or (bindir.parent.name.isdigit() and version != bindir.parent.name):
        fresh = LocalCluster.create()  # initdb and the tests' settings, in a temp folder
        fresh.stop()
        shutil.rmtree(folder, ignore_errors=True)
        folder.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(fresh.datadir.parent, folder)
        settings = {"unix_socket_directories": f"'{folder}'", **BENCH_SETTINGS}
        with (data / "postgresql.conf").open("a") as conf:
            conf.write("\n# diamond_db benchmark cluster (moved from the temp folder)\n")
            conf.writelines(f"{k} = {v}\n" for k, v in settings.items())
        if fresh.user is not None:
            for path in [folder, *folder.rglob("*")]:
                shutil.chown(path, user=fresh.user)
    user = "postgres" if os.geteuid() == 0 else None
    cluster = LocalCluster(bindir=bindir, datadir=data, port=_free_port(), user=user)
    with contextlib.suppress(ServerUnavailable):
        cluster.stop("fast")  # left running by an interrupted run
    cluster.start()
    return cluster


@dataclass
class Dataset:
    """The benchmark database and how it came to be."""

    url: str
    name: str
    rows: int
    seed: int
    reused: bool
    build_seconds: float
    memory: PeakWindow | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "database": self.name,
            "rows": self.rows,
            "seed": self.seed,
            "reused": self.reused,
            "build_seconds": self.build_seconds,
            "build_rows_per_s": self.rows / self.build_seconds if self.build_seconds else None,
        }


def fingerprint() -> str:
    """What the database's content depends on besides rows and seed: the generator.

    Its first diamonds (every field): a generator that fills a new column, or
    draws differently, rebuilds; edits of comments or docstrings do not.
    """
    digest = hashlib.sha256(b"generator")
    for diamond in synthetic.synthetic_diamonds(100, 0):
        digest.update(repr(diamond).encode())
    return digest.hexdigest()[:16]


def prepare(server: Server, rows: int, seed: int, *, rebuild: bool, console: Console) -> Dataset:
    """Reuse diamond_db_bench_<rows>_<seed> if it holds what it should, else build it."""
    name = f"diamond_db_bench_{rows}_{seed}"
    url = make_conninfo(server.admin_url, dbname=name)
    wanted = {"rows": rows, "seed": seed, "fingerprint": fingerprint()}
    with psycopg.connect(server.admin_url, autocommit=True) as admin:
        meta = _meta(baselines.database_comment(admin, name))
        reuse = not rebuild and meta and {k: meta.get(k) for k in wanted} == wanted
    if reuse and meta:
        console.print(f"reusing database {name} (built in {meta['build_seconds']:.0f} s)")
        _bring_current(url, console)
        return Dataset(url, name, rows, seed, True, float(meta["build_seconds"]), meta=meta)
    with psycopg.connect(server.admin_url, autocommit=True) as admin:
        baselines.drop_database(admin, name)
        baselines.create_database(admin, name)
    with PeakWindow("build (seed_diamonds)", rows_streamed=rows) as window:
        seconds = _build(url, rows, seed, console)
    meta = {**wanted, "build_seconds": seconds, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    with psycopg.connect(server.admin_url, autocommit=True) as admin:
        baselines.comment_database(admin, name, json.dumps(meta))
    console.print(f"built {name}: {rows:,} diamonds in {seconds:.1f} s ({rows / seconds:,.0f}/s)")
    return Dataset(url, name, rows, seed, False, seconds, memory=window, meta=meta)


def _bring_current(url: str, console: Console) -> None:
    """Apply the migrations the database lacks (the library's runner), then VACUUM ANALYZE."""
    started = time.perf_counter()
    applied = asyncio.run(Database(url, min_size=0).migrate())
    if not applied:
        return
    with psycopg.connect(url, autocommit=True) as conn:
        baselines.vacuum_analyze(conn)
    versions = ", ".join(m.version for m in applied)
    seconds = time.perf_counter() - started
    console.print(f"  migrated to the current schema ({versions}) in {seconds:.0f} s")


def _meta(comment: str | None) -> dict[str, Any] | None:
    if not comment:
        return None
    with contextlib.suppress(ValueError):
        meta = json.loads(comment)
        if isinstance(meta, dict) and "build_seconds" in meta:
            return meta
    return None


def _build(url: str, rows: int, seed: int, console: Console) -> float:
    """Bootstrap, seed through the library, VACUUM ANALYZE; the seconds it all took."""
    started = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task(f"seeding {rows:,} diamonds", total=rows)

        async def fill() -> int:
            db = Database(url, min_size=1, max_size=2, slow_query_threshold=3600)
            await db.bootstrap()  # before opening: opening checks the schema
            async with db:
                return await synthetic.seed_diamonds(
                    db,
                    rows,
                    seed=seed,
                    batch_size=SEED_BATCH,
                    on_batch=lambda n: progress.update(task, advance=n),
                )

        written = asyncio.run(fill())  # prepare() runs before the scenarios' event loop
        assert written == rows, f"seeded {written} diamonds, expected {rows}"
        progress.update(task, description="VACUUM ANALYZE")
        with psycopg.connect(url, autocommit=True) as conn:
            baselines.vacuum_analyze(conn)
    return time.perf_counter() - started
